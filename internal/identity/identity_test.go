package identity

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

const good = `identities:
  - principal: User:orders
    sasl: {method: scram-sha-512, username: svc-orders, passwordFile: /run/orders}
  - principal: User:CN=billing,O=acme
    tls: {clientCertFile: b.crt, clientKeyFile: b.key, clientKeyPasswordFile: b.pass}
  - principal: User:reports
    sasl: {jaasConfigFile: /run/reports.jaas}
    tls: {clientCertFile: r.crt, clientKeyFile: r.key}
`

func TestParse(t *testing.T) {
	ids, err := Parse("ids.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0].Principal != "User:orders" || ids[1].TLS.ClientKeyPasswordFile != "b.pass" || ids[2].SASL.JaasConfigFile != "/run/reports.jaas" {
		t.Fatalf("parsed %+v", ids)
	}
	if ids[1].Where != "ids.yaml: identities[1]" {
		t.Errorf("where %q", ids[1].Where)
	}
	if got := ids[2].String(); got != "User:reports as sasl user jaas:/run/reports.jaas and client certificate r.crt" {
		t.Errorf("String %q", got)
	}
	if ids, err := Parse("empty.yaml", nil); err != nil || len(ids) != 0 {
		t.Errorf("empty file: %v %v", ids, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"identities:\n  - principal: User:a\n    sasl: {username: u, pasword: x}\n", "line 3: field pasword not found"},
		{"identity: []\n", "field identity not found"},
		{"identities:\n  - sasl: {username: u, passwordFile: f}\n", "identities[0]: principal is required"},
		{"identities:\n  - principal: alice\n    sasl: {username: u, passwordFile: f}\n", `principal "alice": expected User:<name>`},
		{"identities:\n  - principal: User:*\n    sasl: {username: u, passwordFile: f}\n", "would map everyone"},
		{"identities:\n  - principal: User:a\n", "needs sasl or tls"},
		{"identities:\n  - principal: User:a\n    sasl: {username: u}\n", "needs username and passwordFile"},
		{"identities:\n  - principal: User:a\n    sasl: {username: u, passwordFile: f, jaasConfigFile: j}\n", "alternative"},
		{"identities:\n  - principal: User:a\n    sasl: {method: OAUTHBEARER, username: u, passwordFile: f}\n", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"identities:\n  - principal: User:a\n    tls: {clientCertFile: c}\n", "tls needs clientCertFile and clientKeyFile"},
		{"identities:\n  - principal: User:a\n    tls: {clientCertFile: c, clientKeyFile: k}\n  - principal: User:a\n    tls: {clientCertFile: c, clientKeyFile: k}\n",
			"identities[1]: principal User:a is already mapped at f.yaml: identities[0]"},
		{"identities: {principal: User:a}\n", "cannot unmarshal"},
	} {
		_, err := Parse("f.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.doc, err, tc.want)
		}
	}
	// Every problem is reported, not only the first.
	_, err := Parse("f.yaml", []byte("identities:\n  - principal: a\n  - principal: User:b\n    tls: {}\n"))
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("want three problems, got %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ids.yaml")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if ids, err := Load(path); err != nil || len(ids) != 3 {
		t.Fatalf("load: %v %v", ids, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "upstream identity file") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestApply(t *testing.T) {
	ids, err := Parse("ids.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	base := config.Default().Kafka
	base.TLS = config.TLS{Enable: true, CAChainCertFile: "ca.pem", ClientCertFile: "proxy.crt", ClientKeyFile: "proxy.key", ClientKeyPassword: "secret", ServerName: "kafka"}
	base.SASL = config.SASL{Enable: true, Method: "PLAIN", Username: "proxy", Password: "pw", PasswordEnv: "X"}

	k, err := ids[0].Apply(base)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(k.SASL, config.SASL{Enable: true, Method: "SCRAM-SHA-512", Username: "svc-orders", PasswordFile: "/run/orders"}) {
		t.Errorf("sasl identity: %+v", k.SASL)
	}
	if !reflect.DeepEqual(k.TLS, base.TLS) {
		t.Errorf("a SASL identity changed TLS: %+v", k.TLS)
	}
	k, err = ids[1].Apply(base)
	if err != nil {
		t.Fatal(err)
	}
	if k.TLS.ClientCertFile != "b.crt" || k.TLS.ClientKeyFile != "b.key" || k.TLS.ClientKeyPasswordFile != "b.pass" || k.TLS.ClientKeyPassword != "" ||
		k.TLS.CAChainCertFile != "ca.pem" || k.TLS.ServerName != "kafka" {
		t.Errorf("tls identity: %+v", k.TLS)
	}
	if k.SASL.Username != "proxy" {
		t.Errorf("a TLS identity changed SASL: %+v", k.SASL)
	}
	k, err = ids[2].Apply(base)
	if err != nil {
		t.Fatal(err)
	}
	if k.SASL.Method != "PLAIN" || k.SASL.JaasConfigFile != "/run/reports.jaas" || k.SASL.Username != "" {
		t.Errorf("default method and JAAS: %+v", k.SASL)
	}

	plainOnly := config.Default().Kafka
	if _, err := ids[1].Apply(plainOnly); err == nil || !strings.Contains(err.Error(), "--tls-enable") {
		t.Errorf("certificate without upstream TLS: %v", err)
	}
	if _, err := ids[2].Apply(plainOnly); err == nil || !strings.Contains(err.Error(), "sasl.method is required") {
		t.Errorf("no method anywhere: %v", err)
	}
	oauth := plainOnly
	oauth.SASL = config.SASL{Enable: true, Method: "OAUTHBEARER"}
	oauth.TLS.Enable = true
	if _, err := ids[2].Apply(oauth); err == nil || !strings.Contains(err.Error(), "not a user and password mechanism") {
		t.Errorf("default OAUTHBEARER: %v", err)
	}
	if k, err := ids[0].Apply(oauth); err != nil || k.SASL.Method != "SCRAM-SHA-512" || k.SASL.OAuth != (config.OAuth{}) {
		t.Errorf("own method over a default OAUTHBEARER: %+v %v", k.SASL, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("identities:\n  - principal: User:a\n"))
	f.Add([]byte("identities: [[[\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, id := range ids {
			if len(id.check()) != 0 || !strings.HasPrefix(id.Principal, "User:") || (id.SASL == nil && id.TLS == nil) {
				t.Fatalf("accepted an invalid identity %+v", id)
			}
		}
	})
}

// TestSame: a reload keeps an identity whose entry did not change, even
// at another place in the file, and replaces one whose material did.
func TestSame(t *testing.T) {
	parse := func(doc string) Identity {
		ids, err := Parse("ids.yaml", []byte(doc))
		if err != nil || len(ids) == 0 {
			t.Fatalf("%v", err)
		}
		return ids[len(ids)-1]
	}
	a := parse("identities:\n  - principal: User:a\n    sasl: {username: u, passwordFile: /p}\n")
	moved := parse("identities:\n  - principal: User:b\n    sasl: {username: v, passwordFile: /q}\n  - principal: User:a\n    sasl: {username: u, passwordFile: /p}\n")
	other := parse("identities:\n  - principal: User:a\n    sasl: {username: u, passwordFile: /other}\n")
	cert := parse("identities:\n  - principal: User:a\n    sasl: {username: u, passwordFile: /p}\n    tls: {clientCertFile: c, clientKeyFile: k}\n")
	if !a.Same(moved) {
		t.Error("the same entry at another place is not the same identity")
	}
	if a.Same(other) || a.Same(cert) {
		t.Error("a changed password file or an added certificate is the same identity")
	}
}
