package cli

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDropInFlagList: every flag of the proxy we replace (v0.4.3's
// `kafka-proxy server`, testdata/dropin-flags.txt: name, type, default)
// is accepted by ours, takes a value of its documented type, and has its
// documented default, but for the defaults we change on purpose (README,
// migration notes). Where each lands is TestDropInFlags' concern.
func TestDropInFlagList(t *testing.T) {
	f, err := os.Open("testdata/dropin-flags.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deliberate := map[string]string{
		"default-listener-ip": "127.0.0.1: dynamic listeners reachable from the same host only unless set",
	}
	// A value of each documented type, as a manifest writes it.
	samples := map[string]string{
		"": "true", "string": "x", "duration": "3s", "int": "7", "uint": "42", "uint16": "32400",
		"stringArray": "a", "strings": "a,b", "stringToString": "127.0.0.1=localhost", "ints": "20,21",
	}
	special := map[string]string{ // values the flag parses as more than a string
		"bootstrap-server-mapping": "kafka-0:9092,127.0.0.1:32400", "external-server-mapping": "kafka-0:9092,proxy:32400",
		"dial-address-mapping": "kafka-0:9092,10.0.0.5:9092", "forward-proxy": "socks5://proxy:1080",
		"forbidden-api-keys": "20", "tls-refresh": "1m", "proxy-listener-tls-refresh": "1m",
		"proxy-listener-cipher-suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "tls-cipher-suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		"proxy-listener-curve-preferences": "X25519,P256",
	}
	line := regexp.MustCompile("^- `--([a-z0-9-]+)` ?(\\S*)(?: \\(default (.*)\\))? *$")
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("cannot read %q", sc.Text())
		}
		name, typ, def := m[1], m[2], m[3]
		n++
		if name == "help" {
			continue // cobra's own, added when the command runs
		}
		if name == "forbidden-api-keys" && typ == "" {
			typ = "ints" // a list of key numbers there too; the list names no type
		}
		fs := newServerCmd(nil).Flags()
		fl := fs.Lookup(name)
		if fl == nil {
			t.Errorf("--%s (%s) is not accepted", name, typ)
			continue
		}
		if typ == "" && fl.Value.Type() != "bool" {
			t.Errorf("--%s is a switch there, %s here", name, fl.Value.Type())
		}
		value, ok := special[name]
		if !ok {
			value = samples[typ]
		}
		if err := fs.Set(name, value); err != nil {
			t.Errorf("--%s %s: %v", name, value, err)
		}
		if def == "" || deliberate[name] != "" {
			continue
		}
		// A single value there is a one-element list here where ours
		// takes a comma list (--auth-local-mechanism PLAIN,SCRAM-SHA-512).
		if want, got := strings.Trim(def, `"`), strings.Trim(strings.Trim(newServerCmd(nil).Flags().Lookup(name).DefValue, `"`), "[]"); strings.Trim(want, "[]") != got {
			t.Errorf("--%s defaults to %q here, %q there", name, got, want)
		}
	}
	if n != 100 {
		t.Errorf("%d flags in the list, want the 100 of v0.4.3", n)
	}
}
