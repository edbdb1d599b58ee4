package certsubject

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

func cert(t *testing.T, n pkix.Name) *x509.Certificate {
	t.Helper()
	a, err := certs.NewRoot("", certs.Options{Subject: &n})
	if err != nil {
		t.Fatal(err)
	}
	return a.Cert
}

func TestParse(t *testing.T) {
	s, err := Parse(`s:/CN=[aaa,1,2,3]/OU=[bbb,{123},5]/O=[ccc,[{1,2}],6,{7,8}]/ST=[ddd,\],x]`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"CN": {"1", "2", "3", "aaa"}, "OU": {"5", "bbb", "{123}"}, "O": {"6", "[{1,2}]", "ccc", "{7,8}"}, "S": {`\]`, "ddd", "x"}}
	for f, w := range want {
		if got := s.values[f]; len(got) != len(w) || func() bool {
			for i := range w {
				if got[i] != w[i] {
					return true
				}
			}
			return false
		}() {
			t.Errorf("%s = %q, want %q", f, got, w)
		}
	}
	for _, bad := range []string{
		"", "x:/CN=[a]", "s:/", "s:/CN", "s:/CN=a", "s:/CN=[a", "s:/CN=[a]//O=[b]", "s:/cn=[a]",
		"s:/UNSUPPORTED=[a]", "s:/CN=[a]/CN=[b]", "s:/CN=[a]x", "r:/CN=[a(]",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	c := cert(t, pkix.Name{CommonName: "client-42", Organization: []string{"org"}, Country: []string{"PL", "DE"}, OrganizationalUnit: []string{"team-a"}})
	for text, ok := range map[string]bool{
		"s:/CN=[client-42]/O=[org]/C=[DE,PL]": true,
		"s:/C=[PL,DE]":                        true, // sets: order does not matter
		"s:/C=[DE]":                           false,
		"s:/CN=[client-4]":                    false,
		"s:/L=[Berlin]":                       false, // no L in the certificate
		`r:/CN=[^client-.{2}$]/OU=[^team-]`:   true,
		`r:/CN=[^client-.{3}$]`:               false,
		`r:/C=[.*]`:                           false, // two values, one pattern
	} {
		s, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Check(c); (err == nil) != ok {
			t.Errorf("%s: Check = %v, want ok=%v", text, err, ok)
		}
	}
	any, err := ParseAll([]string{"s:/CN=[other]", "s:/CN=[client-42]"})
	if err != nil || any.Check(c) != nil {
		t.Fatalf("alternatives: %v %v", err, any.Check(c))
	}
	if err := (Any{any[0]}).Check(c); err == nil {
		t.Fatal("no alternative met, accepted")
	}
	if err := (Any(nil)).Check(c); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseAll([]string{"s:/CN=[a]", "bad", "s:/X=[1]"}); err == nil {
		t.Fatal("bad requirements accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"s:/CN=[a,b]/O=[c]", `r:/CN=[^a.{1,2}\]$]`, "s:/CN=[[{]", "r:/OU=[,,]"} {
		f.Add(s)
	}
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "a", Organization: []string{"c"}}}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text)
		if err != nil {
			return
		}
		_ = s.Check(c)
	})
}
