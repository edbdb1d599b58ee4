package authplugin

import (
	"strings"
	"testing"
)

// FuzzClaims: any token the plugin accepted is read without a panic, and
// a principal comes only from a JWT's claim.
func FuzzClaims(f *testing.F) {
	f.Add(jwtWith(`{"sub":"alice","exp":4102444800}`, "sig"))
	f.Add("a.b.c")
	f.Add("..")
	f.Add(jwtWith(`{"sub":1}`, ""))
	f.Add(jwtWith(`[]`, "x"))
	f.Fuzz(func(t *testing.T, token string) {
		p, _, err := claims(token, "sub")
		if err == nil && (p == "" || strings.Count(token, ".") != 2) {
			t.Fatalf("principal %q from %q", p, token)
		}
	})
}

// FuzzHandshake: a plugin's first stdout line, whatever it is, is parsed
// without a panic, and only a version 1 unix or tcp line in a known form
// is accepted.
func FuzzHandshake(f *testing.F) {
	f.Add("1|1|unix|/tmp/plugin123|grpc")
	f.Add("1|1|tcp|127.0.0.1:10000|netrpc")
	f.Add("1|1|unix|/tmp/p")
	f.Add("1|1|tcp|127.0.0.1:1|grpc|MIIB")
	f.Add("2|1|unix|/tmp/p|grpc")
	f.Add("||||||")
	f.Fuzz(func(t *testing.T, line string) {
		network, addr, protocol, err := parseHandshake(line)
		if err != nil {
			return
		}
		if !strings.HasPrefix(line, "1|1|") || (network != "unix" && network != "tcp") ||
			(protocol != "grpc" && protocol != "netrpc") || !strings.Contains(line, "|"+addr) {
			t.Fatalf("%q accepted as %s %s %s", line, network, addr, protocol)
		}
	})
}
