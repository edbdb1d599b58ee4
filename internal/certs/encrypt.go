package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf/pkcs8"
)

// KeyFormat is how a key is written to PEM.
type KeyFormat int

const (
	// PKCS8 is "PRIVATE KEY", or "ENCRYPTED PRIVATE KEY" (PBES2,
	// AES-256-CBC) with a password.
	PKCS8 KeyFormat = iota
	// Legacy is "RSA PRIVATE KEY"/"EC PRIVATE KEY", encrypted with the
	// OpenSSL "Proc-Type: 4,ENCRYPTED" header (AES-256-CBC) when a password
	// is given — what `openssl genrsa -aes256` used to write.
	Legacy
)

// EncryptedKeyPEM encodes the key in format, encrypted with password when
// it is non-empty.
func (i *Issued) EncryptedKeyPEM(format KeyFormat, password []byte) ([]byte, error) {
	switch format {
	case PKCS8:
		der, err := x509.MarshalPKCS8PrivateKey(i.Key)
		if err != nil {
			return nil, err
		}
		if len(password) == 0 {
			return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
		}
		enc, err := pkcs8.Encrypt(der, password, 2048)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), nil
	case Legacy:
		var (
			typ string
			der []byte
			err error
		)
		switch k := i.Key.(type) {
		case *rsa.PrivateKey:
			typ, der = "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)
		case *ecdsa.PrivateKey:
			typ = "EC PRIVATE KEY"
			if der, err = x509.MarshalECPrivateKey(k); err != nil {
				return nil, err
			}
		default:
			return nil, errNoLegacy
		}
		if len(password) == 0 {
			return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil
		}
		//lint:ignore SA1019 deliberately writing the legacy format, to test that the proxy reads it
		block, err := x509.EncryptPEMBlock(rand.Reader, typ, der, password, x509.PEMCipherAES256)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(block), nil
	}
	return nil, fmt.Errorf("unknown key format %d", format)
}

// Files are the paths WriteFiles wrote.
type Files struct {
	Cert, Key string
}

// WriteFiles writes <name>.pem (leaf + intermediates) and <name>-key.pem
// (mode 0600) into dir.
func (i *Issued) WriteFiles(dir, name string, format KeyFormat, password []byte) (Files, error) {
	keyPEM, err := i.EncryptedKeyPEM(format, password)
	if err != nil {
		return Files{}, err
	}
	f := Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := os.WriteFile(f.Cert, i.ChainPEM(), 0o644); err != nil {
		return Files{}, err
	}
	if err := os.WriteFile(f.Key, keyPEM, 0o600); err != nil {
		return Files{}, err
	}
	return f, nil
}

// WriteCert writes the CA certificate (and, with chain, its parents up to
// the root) to dir/name.pem.
func (a *Authority) WriteCert(dir, name string, chain bool) (string, error) {
	certs := []*x509.Certificate{a.Cert}
	if chain {
		for p := a.Parent; p != nil; p = p.Parent {
			certs = append(certs, p.Cert)
		}
	}
	path := filepath.Join(dir, name+".pem")
	return path, os.WriteFile(path, EncodeCerts(certs...), 0o644)
}
