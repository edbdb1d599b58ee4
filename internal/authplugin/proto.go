package authplugin

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The gRPC form's messages (proto3, package proto), described here rather
// than generated: six flat messages do not justify a protoc step, and the
// wire format is all that must match.
var messages = buildMessages()

// gRPC method paths.
const (
	methodAuthenticate = "/proto.PasswordAuthenticator/Authenticate"
	methodVerifyToken  = "/proto.TokenInfo/VerifyToken"
	methodGetToken     = "/proto.TokenProvider/GetToken"
)

type field struct {
	name     string
	number   int32
	kind     descriptorpb.FieldDescriptorProto_Type
	repeated bool
}

func buildMessages() map[string]protoreflect.MessageDescriptor {
	str, boolean, i32 := descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_BOOL, descriptorpb.FieldDescriptorProto_TYPE_INT32
	defs := []struct {
		name   string
		fields []field
	}{
		{"CredentialsRequest", []field{{"username", 1, str, false}, {"password", 2, str, false}}},
		{"AuthenticateResponse", []field{{"authenticated", 1, boolean, false}, {"status", 2, i32, false}}},
		{"VerifyRequest", []field{{"token", 1, str, false}, {"params", 2, str, true}}},
		{"VerifyResponse", []field{{"success", 1, boolean, false}, {"status", 2, i32, false}}},
		{"TokenRequest", []field{{"params", 1, str, true}}},
		{"TokenResponse", []field{{"success", 1, boolean, false}, {"status", 2, i32, false}, {"token", 3, str, false}}},
	}
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("kafka-proxy/authplugin.proto"),
		Package: proto.String("proto"),
		Syntax:  proto.String("proto3"),
	}
	for _, d := range defs {
		m := &descriptorpb.DescriptorProto{Name: proto.String(d.name)}
		for _, f := range d.fields {
			label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
			if f.repeated {
				label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
			}
			m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{
				Name: proto.String(f.name), JsonName: proto.String(f.name), Number: proto.Int32(f.number),
				Type: f.kind.Enum(), Label: label.Enum(),
			})
		}
		file.MessageType = append(file.MessageType, m)
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(fmt.Sprintf("authplugin: bad descriptor: %v", err))
	}
	out := map[string]protoreflect.MessageDescriptor{}
	for i := 0; i < fd.Messages().Len(); i++ {
		m := fd.Messages().Get(i)
		out[string(m.Name())] = m
	}
	return out
}

// NewMessage is a new, empty message of the named type (see Method).
func NewMessage(name string) *dynamicpb.Message { return dynamicpb.NewMessage(messages[name]) }

// MapToMessage assigns the named fields of m: strings, bools, int32s and
// string lists, as the net/rpc form carries them. Unknown names and
// values of the wrong type are ignored.
func MapToMessage(m *dynamicpb.Message, values map[string]any) *dynamicpb.Message {
	fields := m.Descriptor().Fields()
	for name, v := range values {
		f := fields.ByName(protoreflect.Name(name))
		if f == nil {
			continue
		}
		switch v := v.(type) {
		case []string:
			if f.IsList() && f.Kind() == protoreflect.StringKind {
				l := m.Mutable(f).List()
				for _, s := range v {
					l.Append(protoreflect.ValueOfString(s))
				}
			}
		case string:
			if !f.IsList() && f.Kind() == protoreflect.StringKind {
				m.Set(f, protoreflect.ValueOfString(v))
			}
		case bool:
			if !f.IsList() && f.Kind() == protoreflect.BoolKind {
				m.Set(f, protoreflect.ValueOfBool(v))
			}
		case int32:
			if !f.IsList() && f.Kind() == protoreflect.Int32Kind {
				m.Set(f, protoreflect.ValueOfInt32(v))
			}
		case int:
			if !f.IsList() && f.Kind() == protoreflect.Int32Kind {
				m.Set(f, protoreflect.ValueOfInt32(int32(v)))
			}
		}
	}
	return m
}

// MessageToMap is the net/rpc form of m: every field by name, string
// lists as []string.
func MessageToMap(m *dynamicpb.Message) map[string]any {
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if f.IsList() {
			l := m.Get(f).List()
			s := make([]string, l.Len())
			for j := range s {
				s[j] = l.Get(j).String()
			}
			out[string(f.Name())] = s
		} else {
			out[string(f.Name())] = m.Get(f).Interface()
		}
	}
	return out
}
