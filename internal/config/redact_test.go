package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestRedacted: no secret survives in the redacted configuration's YAML,
// the original keeps its values, and paths (not secrets) stay readable.
func TestRedacted(t *testing.T) {
	c := Default()
	c.Kafka.SASL.Password = "s3cret-sasl"
	c.Kafka.TLS.ClientKeyPassword = "s3cret-key"
	c.Proxy.TLS.KeyPassword = "s3cret-listener"
	c.Auth.Local.Plugin.Params = []string{"--token", "s3cret-param"}
	c.Kafka.ForwardProxy = "socks5://user:s3cret-fwd@proxy:1080"
	c.Kafka.TLS.CAChainCertFile = "/etc/ca.pem"
	out := c.Redacted().YAML()
	if strings.Contains(out, "s3cret") {
		t.Fatalf("a secret in the redacted configuration:\n%s", out)
	}
	for _, want := range []string{"/etc/ca.pem", "[redacted]", "proxy:1080"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in the redacted configuration:\n%s", want, out)
		}
	}
	if c.Kafka.SASL.Password != "s3cret-sasl" || c.Auth.Local.Plugin.Params[1] != "s3cret-param" {
		t.Error("Redacted changed the original")
	}
}

// TestSecretsTagged: a field whose name says it holds a password, secret
// or token (not a file or variable naming one) is tagged secret, so a new
// one cannot reach the status page by being forgotten here.
func TestSecretsTagged(t *testing.T) {
	var walk func(t *testing.T, typ reflect.Type, path string)
	walk = func(t *testing.T, typ reflect.Type, path string) {
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				name := strings.ToLower(f.Name)
				secretName := (strings.Contains(name, "password") || strings.Contains(name, "secret") || strings.HasSuffix(name, "token")) &&
					!strings.HasSuffix(name, "file") && !strings.HasSuffix(name, "env")
				if secretName && f.Tag.Get("secret") != "true" {
					t.Errorf("%s.%s holds a secret and is not tagged secret", path, f.Name)
				}
				walk(t, f.Type, path+"."+f.Name)
			}
		case reflect.Slice, reflect.Pointer:
			walk(t, typ.Elem(), path)
		}
	}
	walk(t, reflect.TypeOf(Config{}), "Config")
}
