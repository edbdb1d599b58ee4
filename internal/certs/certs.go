// Package certs issues CAs and certificates: a root, intermediates, server
// certificates with IP/DNS SANs and client certificates (optionally already
// expired), PEM-encoded with optionally encrypted keys. Tests use it to
// build realistic PKIs (a client CA chain like a self-run KRaft cluster's);
// the `kafka-proxy certs` command uses it for quick setups.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// KeyType selects the key algorithm of a new certificate.
type KeyType int

const (
	// ECDSAP256 is the default: fast to generate, which keeps tests quick.
	ECDSAP256 KeyType = iota
	// RSA2048 is what most Kafka setups (keytool defaults) still use.
	RSA2048
)

// Options tune one certificate. The zero value is a one-year ECDSA
// certificate valid from one hour ago (to tolerate clock skew).
type Options struct {
	KeyType   KeyType
	NotBefore time.Time
	NotAfter  time.Time
	// Expired makes the certificate's validity end an hour ago (and
	// begin a day before that), overriding NotBefore/NotAfter.
	Expired bool
	// Organization goes into the subject, for principal-mapping tests.
	Organization string
	// Subject, if set, is the whole subject (the common name and
	// Organization are then ignored), for principal-mapping tests.
	Subject *pkix.Name
}

func (o Options) window() (time.Time, time.Time) {
	now := time.Now()
	if o.Expired {
		return now.Add(-25 * time.Hour), now.Add(-time.Hour)
	}
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = now.Add(-time.Hour)
	}
	if na.IsZero() {
		na = now.Add(365 * 24 * time.Hour)
	}
	return nb, na
}

// Authority is a CA that can issue certificates and sub-CAs.
type Authority struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	Parent *Authority // nil for a root
}

// Issued is a certificate with its key.
type Issued struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain holds the issuing intermediates (not the root), leaf first
	// excluded, as a TLS peer must send them.
	Chain []*x509.Certificate
}

// NewRoot creates a self-signed root CA.
func NewRoot(cn string, o Options) (*Authority, error) {
	key, err := newKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	nb, na := o.window()
	tmpl := &x509.Certificate{
		Subject:               subject(cn, o),
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// NewIntermediate issues a sub-CA, as in a root → intermediate → leaf PKI.
func (a *Authority) NewIntermediate(cn string, o Options) (*Authority, error) {
	key, err := newKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	nb, na := o.window()
	tmpl := &x509.Certificate{
		Subject:               subject(cn, o),
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	cert, err := sign(tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key, Parent: a}, nil
}

// IssueServer issues a server certificate for hosts (IPs become IP SANs,
// names DNS SANs).
func (a *Authority) IssueServer(cn string, hosts []string, o Options) (*Issued, error) {
	tmpl := &x509.Certificate{Subject: subject(cn, o), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return a.issue(tmpl, o)
}

// IssueClient issues a client certificate; cn becomes the Kafka principal
// (User:CN=...) on brokers with ssl.client.auth=required.
func (a *Authority) IssueClient(cn string, o Options) (*Issued, error) {
	tmpl := &x509.Certificate{Subject: subject(cn, o), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	return a.issue(tmpl, o)
}

func (a *Authority) issue(tmpl *x509.Certificate, o Options) (*Issued, error) {
	key, err := newKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	tmpl.NotBefore, tmpl.NotAfter = o.window()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if o.KeyType == RSA2048 {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	cert, err := sign(tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for p := a; p != nil && p.Parent != nil; p = p.Parent {
		chain = append(chain, p.Cert)
	}
	return &Issued{Cert: cert, Key: key, Chain: chain}, nil
}

// Root returns the top of a's chain.
func (a *Authority) Root() *Authority {
	for a.Parent != nil {
		a = a.Parent
	}
	return a
}

// CertPEM is the CA certificate alone.
func (a *Authority) CertPEM() []byte { return EncodeCerts(a.Cert) }

// ChainPEM is the leaf followed by its intermediates, as a cert file for a
// TLS peer should be.
func (i *Issued) ChainPEM() []byte {
	return EncodeCerts(append([]*x509.Certificate{i.Cert}, i.Chain...)...)
}

// KeyPEM is the unencrypted PKCS#8 key.
func (i *Issued) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(i.Key)
	if err != nil {
		panic(err) // only for key types newKey never makes
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TLSCertificate is the pair ready for a tls.Config.
func (i *Issued) TLSCertificate() tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{i.Cert.Raw}, PrivateKey: i.Key, Leaf: i.Cert}
	for _, ca := range i.Chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	return c
}

// EncodeCerts PEM-encodes certificates in order.
func EncodeCerts(cs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func subject(cn string, o Options) pkix.Name {
	if o.Subject != nil {
		return *o.Subject
	}
	n := pkix.Name{CommonName: cn}
	if o.Organization != "" {
		n.Organization = []string{o.Organization}
	}
	return n
}

func newKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("unknown key type %d", t)
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("sign %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

var errNoLegacy = errors.New("legacy PEM encryption needs an RSA or ECDSA key")
