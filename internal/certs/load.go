package certs

import (
	"crypto/x509"

	"software.sslmate.com/src/go-pkcs12"
)

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
