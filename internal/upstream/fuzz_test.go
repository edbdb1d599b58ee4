package upstream

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseJAAS: arbitrary JAAS text never panics, and an error never
// echoes a value from the file (values may be passwords).
func FuzzParseJAAS(f *testing.F) {
	f.Add(`KafkaClient { org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p"; };`)
	f.Add(`org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cr\"et";`)
	f.Add(`KafkaClient {`)
	f.Add(`x required password="zz-secret-zz`)
	f.Add(`KafkaClient { x required password="zz-secret-zz" user=; };`)
	f.Fuzz(func(t *testing.T, src string) {
		_, err := ParseJAAS(src)
		if err != nil && strings.Contains(src, `password="zz-secret-zz"`) && strings.Contains(err.Error(), "zz-secret-zz") {
			t.Fatalf("error echoes the password: %v", err)
		}
	})
}

// FuzzParseTokenOutput: a token command's output never panics the parser.
func FuzzParseTokenOutput(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.sig\n1700000000000\n")
	f.Add(`{"token":"abc","expires_at":"2030-01-01T00:00:00Z"}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, out string) {
		_, _, _ = parseTokenOutput(out, time.Unix(1_700_000_000, 0))
	})
}
