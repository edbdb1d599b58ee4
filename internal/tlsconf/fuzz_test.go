package tlsconf

import (
	"os"
	"path/filepath"
	"testing"
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
