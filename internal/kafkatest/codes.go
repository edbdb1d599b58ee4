package kafkatest

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrorCodes lists every error code in a response with the names that
// locate it (topic, partition, group, key, resource), sorted: what must be
// equal between a broker's and the proxy's answer.
func ErrorCodes(resp kmsg.Response) []string {
	var out []string
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(path, v.Index(i))
			}
		case reflect.Struct:
			id := ""
			for _, name := range []string{"Topic", "Partition", "Group", "GroupID", "Key", "ResourceName", "TransactionalID"} {
				if f := v.FieldByName(name); f.IsValid() {
					if f.Kind() == reflect.Pointer {
						if f.IsNil() {
							continue
						}
						f = f.Elem()
					}
					id += fmt.Sprintf("%s=%v ", name, f.Interface())
				}
			}
			p := path + "/" + strings.TrimSpace(id)
			if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
				out = append(out, fmt.Sprintf("%s: %s", p, codeName(int16(f.Int()))))
			}
			for i := range v.NumField() {
				if k := v.Field(i).Kind(); k == reflect.Slice || k == reflect.Pointer {
					if v.Type().Field(i).Name != "UnknownTags" {
						walk(p, v.Field(i))
					}
				}
			}
		}
	}
	walk("", reflect.ValueOf(resp))
	sort.Strings(out)
	return out
}

func codeName(c int16) string {
	if c == 0 {
		return "OK"
	}
	if err := kerr.ErrorForCode(c); err != nil {
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return ke.Message
		}
	}
	return fmt.Sprint(c)
}
