package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf/pkcs8"
)

// ErrKeyPasswordRequired means the key is encrypted and no password was
// given; ErrIncorrectKeyPassword means the password does not decrypt it.
var (
	ErrKeyPasswordRequired  = errors.New("private key is encrypted but no password was given (--tls-client-key-password)")
	ErrIncorrectKeyPassword = errors.New("private key password is incorrect")
)

// ParsePrivateKeyPEM finds the first private key block in data and returns
// the key, decrypting it with password when it is a legacy encrypted PEM
// ("Proc-Type: 4,ENCRYPTED" with DEK-Info) or an "ENCRYPTED PRIVATE KEY"
// (PKCS#8 PBES2). Unencrypted PKCS#1, SEC 1 and PKCS#8 keys are accepted as
// they are; a password given for an unencrypted key is ignored.
func ParsePrivateKeyPEM(data, password []byte) (crypto.Signer, error) {
	rest := data
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return parseKeyBlock(block, password)
		}
	}
	if !sawPEM {
		return nil, errors.New("no PEM data found")
	}
	return nil, errors.New("no PRIVATE KEY block found in PEM data")
}

func parseKeyBlock(block *pem.Block, password []byte) (crypto.Signer, error) {
	der := block.Bytes
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		if len(password) == 0 {
			return nil, ErrKeyPasswordRequired
		}
		plain, err := pkcs8.Decrypt(der, password)
		if errors.Is(err, pkcs8.ErrIncorrectPassword) {
			return nil, ErrIncorrectKeyPassword
		}
		if err != nil {
			return nil, fmt.Errorf("encrypted PKCS#8 key: %w", err)
		}
		return parseDER("PRIVATE KEY", plain)
	case isLegacyEncrypted(block):
		if len(password) == 0 {
			return nil, ErrKeyPasswordRequired
		}
		//lint:ignore SA1019 legacy PEM encryption is insecure, but keys in the field use it (issue 3)
		plain, err := x509.DecryptPEMBlock(block, password)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, ErrIncorrectKeyPassword
		}
		if err != nil {
			return nil, fmt.Errorf("legacy encrypted PEM key (%s): %w", block.Headers["DEK-Info"], err)
		}
		key, err := parseDER(block.Type, plain)
		if err != nil {
			// Legacy encryption has no integrity check: a wrong password
			// usually shows up as garbage DER rather than bad padding.
			return nil, ErrIncorrectKeyPassword
		}
		return key, nil
	case block.Headers["Proc-Type"] != "":
		return nil, fmt.Errorf("PEM header Proc-Type %q without a usable DEK-Info", block.Headers["Proc-Type"])
	}
	return parseDER(block.Type, der)
}

func parseDER(typ string, der []byte) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch typ {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	default:
		return nil, fmt.Errorf("unsupported key block type %q", typ)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", typ, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", key)
}

// LoadKeyPair builds a tls.Certificate from a PEM certificate chain and a
// (possibly encrypted) PEM private key, checking that they belong together.
func LoadKeyPair(certPEM, keyPEM, password []byte) (tls.Certificate, error) {
	var cert tls.Certificate
	rest := certPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			cert.Certificate = append(cert.Certificate, block.Bytes)
		}
	}
	if len(cert.Certificate) == 0 {
		return cert, errors.New("no CERTIFICATE block found in the certificate file")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return cert, fmt.Errorf("parse certificate: %w", err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM, password)
	if err != nil {
		return cert, err
	}
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return cert, errors.New("private key does not match the certificate's public key")
	}
	cert.PrivateKey = key
	cert.Leaf = leaf
	return cert, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// ParseCertificatesPEM returns every CERTIFICATE in data.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE block found")
	}
	return certs, nil
}

// isLegacyEncrypted reports an RFC 1423 "Proc-Type: 4,ENCRYPTED" block.
// The format is insecure (unauthenticated CBC) and deprecated in Go, but
// operators still have such keys, so the proxy reads them.
func isLegacyEncrypted(block *pem.Block) bool {
	//lint:ignore SA1019 see above: reading the legacy format on purpose
	return x509.IsEncryptedPEMBlock(block)
}
