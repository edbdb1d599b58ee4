package principal

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// FuzzParseRules: any rules text is parsed or refused, never a panic, and
// parsed rules map any name without one.
func FuzzParseRules(f *testing.F) {
	for _, s := range []string{
		"DEFAULT", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT",
		`RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`, "RULE:a/$9${x}\\$/U", "RULE://", "default",
	} {
		f.Add(s, "CN=Duke,OU=ServiceUsers,O=Org,C=US")
	}
	f.Fuzz(func(t *testing.T, rules, dn string) {
		m, err := ParseRules(rules)
		if err != nil {
			return
		}
		_, _ = m.Name(dn)
	})
}

// FuzzDistinguishedName: any subject bytes are written or refused.
func FuzzDistinguishedName(f *testing.F) {
	f.Add(rawSubject(f, pkix.Name{CommonName: "a", Organization: []string{"b"}}))
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x05, 0x31, 0x03, 0x30, 0x01, 0x06})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DistinguishedName(b)
	})
}

func rawSubject(f *testing.F, name pkix.Name) []byte {
	raw, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		f.Fatal(err)
	}
	return raw
}
