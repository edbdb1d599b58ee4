package principal

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

// The cases of Kafka's own SslPrincipalMapperTest: the same rules give the
// same names here.
func TestKafkaMappingRules(t *testing.T) {
	rules := "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, " +
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, " +
		"RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, " +
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, " +
		"DEFAULT"
	m, err := ParseRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]string{
		"CN=Duke,OU=ServiceUsers,O=Org,C=US":        "duke",
		"CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US": "duke@sme",
		"cn=duke,ou=sme,dc=mycp,dc=com":             "DUKE@SME",
		"cN=duke,OU=JavaSoft,O=Sun Microsystems":    "DUKE",
		"OU=JavaSoft,O=Sun Microsystems,C=US":       "OU=JavaSoft,O=Sun Microsystems,C=US",
	} {
		if got, err := m.Name(dn); err != nil || got != want {
			t.Errorf("Name(%q) = %q, %v; want %q", dn, got, err, want)
		}
	}

	m, err = ParseRules(`RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Name(`CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz`); got != `Tkac\, Adam` {
		t.Errorf("escaped comma: %q", got)
	}
}

func TestParseRules(t *testing.T) {
	for _, ok := range []string{
		"", "DEFAULT",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,\nRULE:^CN=(.*?)$/$1/ , DEFAULT",
	} {
		if _, err := ParseRules(ok); err != nil {
			t.Errorf("ParseRules(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"default", "DEFAUL", "DEFAULT/L", "DEFAULT/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/$1",
		"RULE:CN=(.*?),OU=ServiceUsers.*/$1/L/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/L",
		"RULE:CN=(.*?),OU=ServiceUsers.*/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/LU",
		"RULE:^CN=(.*?$/$1/", // bad regexp
	} {
		if _, err := ParseRules(bad); err == nil {
			t.Errorf("ParseRules(%q) accepted", bad)
		}
	}
}

func TestNoRuleApplies(t *testing.T) {
	m, err := ParseRules("RULE:^CN=(.*?),OU=ServiceUsers$/$1/")
	if err != nil {
		t.Fatal(err)
	}
	if name, err := m.Name("CN=app,OU=Other"); err == nil {
		t.Fatalf("Name = %q, want an error", name)
	}
}

func TestJavaReplacement(t *testing.T) {
	for in, want := range map[string]string{
		"$1":      "${1}",
		"$1abc":   "${1}abc",
		"$12":     "${1}2", // one group: $12 is group 1 and "2"
		"\\$1":    "$$1",
		"$9":      "$$9", // beyond the groups: literal, as Kafka escapes it
		"a\\/b":   "a/b",
		"${name}": "${name}",
		"cost: $": "cost: $$",
		"$1@$2-x": "${1}@$$2-x",
	} {
		if got := javaReplacement(in, 1); got != want {
			t.Errorf("javaReplacement(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDistinguishedName: subjects written as X500Principal.getName() does.
func TestDistinguishedName(t *testing.T) {
	oid := func(s ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(s) }
	cases := []struct {
		name pkix.Name
		want string
	}{
		{pkix.Name{CommonName: "client-1", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"org"}, Country: []string{"DE"}},
			"CN=client-1,OU=ServiceUsers,O=org,C=DE"},
		{pkix.Name{CommonName: "Tkac, Adam", Locality: []string{"Praha"}, Province: []string{"CZ-10"}},
			`CN=Tkac\, Adam,L=Praha,ST=CZ-10`},
		{pkix.Name{CommonName: " #lead+trail ", StreetAddress: []string{"a;b<c>\"d\\"}},
			`CN=\ #lead\+trail\ ,STREET=a\;b\<c\>\"d\\`},
		{pkix.Name{CommonName: "#hash"}, `CN=\#hash`},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 25), Value: "com"},
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 25), Value: "example"},
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 1), Value: "u1"},
			{Type: oid(1, 2, 840, 113549, 1, 9, 1), Value: "a@b.c"},
			{Type: oid(2, 5, 4, 5), Value: "42"},
		}}, "2.5.4.5=#13023432,1.2.840.113549.1.9.1=#0c05614062" + "2e63,UID=u1,DC=example,DC=com"},
	}
	for _, c := range cases {
		cert := selfSigned(t, c.name)
		got, err := DistinguishedName(cert.RawSubject)
		if err != nil || got != c.want {
			t.Errorf("DistinguishedName = %q, %v; want %q", got, err, c.want)
		}
	}
	if _, err := DistinguishedName([]byte{0x30, 0x03, 1}); err == nil {
		t.Error("garbage subject parsed")
	}
}

func TestFromCertificate(t *testing.T) {
	m, err := ParseRules("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, pkix.Name{CommonName: "Orders-App", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"acme"}})
	if p, err := m.FromCertificate(cert); err != nil || p != "User:orders-app" {
		t.Errorf("FromCertificate = %q, %v", p, err)
	}
	cert = selfSigned(t, pkix.Name{CommonName: "ops", Organization: []string{"acme"}})
	if p, err := m.FromCertificate(cert); err != nil || p != "User:CN=ops,O=acme" {
		t.Errorf("FromCertificate (DEFAULT) = %q, %v", p, err)
	}
}

func selfSigned(t *testing.T, name pkix.Name) *x509.Certificate {
	t.Helper()
	root, err := certs.NewRoot("", certs.Options{Subject: &name})
	if err != nil {
		t.Fatal(err)
	}
	return root.Cert
}
