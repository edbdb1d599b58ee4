package tlsconf

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParsePrivateKeyPEM: arbitrary PEM (encrypted or not) with any
// password never panics the key parser, including the PBES2 decoder.
func FuzzParsePrivateKeyPEM(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.key"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data, []byte("test-pass"))
		}
	}
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"), []byte("x"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), []byte(""))
	f.Fuzz(func(t *testing.T, data, password []byte) {
		_, _ = ParsePrivateKeyPEM(data, password)
	})
}

// FuzzParseCRLs: any CRL file is read or refused, never a panic.
func FuzzParseCRLs(f *testing.F) {
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = parseCRLs(data, nil, time.Now())
	})
}
