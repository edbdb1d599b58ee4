package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// LoadAuthority is a CA from its PEM files: certPEM holds the CA's
// certificate first, then any issuers up to the root (so certificates it
// issues carry their intermediates); keyPEM its key, encrypted or not.
func LoadAuthority(certPEM, keyPEM, password []byte) (*Authority, error) {
	var chain []*x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no CERTIFICATE in the CA certificate file")
	}
	if !chain[0].IsCA {
		return nil, fmt.Errorf("%q is not a CA certificate", chain[0].Subject.String())
	}
	key, err := tlsconf.ParsePrivateKeyPEM(keyPEM, password)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !publicKeysEqual(chain[0].PublicKey, key.Public()) {
		return nil, errors.New("the CA key does not belong to the CA certificate")
	}
	var parent *Authority
	for i := len(chain) - 1; i >= 1; i-- {
		parent = &Authority{Cert: chain[i], Parent: parent}
	}
	return &Authority{Cert: chain[0], Key: key, Parent: parent}, nil
}

func publicKeysEqual(a, b any) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// ChainPEM is the CA certificate followed by its issuers up to the root.
func (a *Authority) ChainPEM() []byte {
	var cs []*x509.Certificate
	for p := a; p != nil; p = p.Parent {
		cs = append(cs, p.Cert)
	}
	return EncodeCerts(cs...)
}

// pkcs12Iterations makes a guessed store password expensive to try.
const pkcs12Iterations = 100_000

// KeyStore is a PKCS#12 keystore (what Java's keystore.type=PKCS12 and
// keytool read) holding the key, the certificate and its intermediates.
func (i *Issued) KeyStore(password string) ([]byte, error) {
	return pkcs12.Modern2023.WithIterations(pkcs12Iterations).Encode(i.Key, i.Cert, i.Chain, password)
}

// TrustStore is a PKCS#12 truststore holding certs as trusted entries
// (ssl.truststore.type=PKCS12).
func TrustStore(password string, certs ...*x509.Certificate) ([]byte, error) {
	return pkcs12.Modern2023.WithIterations(pkcs12Iterations).EncodeTrustStore(certs, password)
}

// KeyPEM is the CA's key as PKCS#8 PEM, encrypted with password when it
// is not empty.
func (a *Authority) KeyPEM(password []byte) ([]byte, error) {
	return (&Issued{Key: a.Key}).EncryptedKeyPEM(PKCS8, password)
}
