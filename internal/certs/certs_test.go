package certs

import (
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// TestChain issues root → intermediate → server/client and verifies both
// leaves against the root alone, as brokers and the proxy do.
func TestChain(t *testing.T) {
	root, err := NewRoot("root", Options{})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("inter", Options{KeyType: RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := inter.IssueServer("broker", []string{"127.0.0.1", "localhost"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := inter.IssueClient("proxy", Options{Organization: "team"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	inters := x509.NewCertPool()
	inters.AddCert(inter.Cert)
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "localhost"}); err != nil {
		t.Fatalf("server: %v", err)
	}
	if !srv.Cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatal("no IP SAN")
	}
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client: %v", err)
	}
	if len(cli.TLSCertificate().Certificate) != 2 || root.Root() != root || inter.Root() != root {
		t.Fatal("chain not carried")
	}
	old, _ := inter.IssueClient("old", Options{Expired: true})
	if !time.Now().After(old.Cert.NotAfter) {
		t.Fatal("Expired certificate is still valid")
	}
}
