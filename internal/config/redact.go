package config

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// redactedValue stands in for a secret.
const redactedValue = "[redacted]"

// Redacted is c with every secret replaced: the fields tagged
// `secret:"true"` (passwords, plugin arguments) and the forward proxy's
// password. c itself is not changed. Fit for the status page.
func (c Config) Redacted() Config {
	out := c
	redactValue(reflect.ValueOf(&out).Elem())
	if out.Kafka.ForwardProxy != "" {
		out.Kafka.ForwardProxy = out.Kafka.RedactedForwardProxy()
	}
	return out
}

// YAML is the configuration as a YAML document (the format --config
// reads); use it on a Redacted configuration.
func (c Config) YAML() string { return YAMLOf(c) }

// YAMLOf is v as YAML, for comparing and printing configuration parts.
func YAMLOf(v any) string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "# cannot encode the configuration: " + err.Error()
	}
	_ = enc.Close()
	return b.String()
}

// redactValue walks v, copying what it changes so that the original keeps its
// values (slices and pointers are shared by the shallow copy).
func redactValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Tag.Get("secret") == "true" {
				redactSecret(v.Field(i))
				continue
			}
			redactValue(v.Field(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		v.Set(c)
		for i := range v.Len() {
			redactValue(v.Index(i))
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		n := reflect.New(v.Elem().Type())
		n.Elem().Set(v.Elem())
		v.Set(n)
		redactValue(n.Elem())
	}
}

func redactSecret(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.String() != "" {
			v.SetString(redactedValue)
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).SetString(redactedValue)
		}
		v.Set(c)
	}
}
