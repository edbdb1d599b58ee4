package tlsconf

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenSSLKeys decodes keys written by OpenSSL in every supported format
// and checks each matches its certificate.
func TestOpenSSLKeys(t *testing.T) {
	cases := []struct {
		key, cert, password string
		wantErr             string
	}{
		{"rsa-pkcs1.key", "rsa.crt", "", ""},
		{"rsa-pkcs8.key", "rsa.crt", "ignored", ""},
		{"ec-sec1.key", "ec.crt", "", ""},
		{"rsa-pkcs8-aes256.key", "rsa.crt", "test-pass", ""},
		{"rsa-pkcs8-aes128-sha1.key", "rsa.crt", "test-pass", ""},
		{"ec-pkcs8-des3.key", "ec.crt", "test-pass", ""},
		{"ec-pkcs8-aes192-sha512.key", "ec.crt", "test-pass", ""},
		{"rsa-legacy-aes256.key", "rsa.crt", "test-pass", ""},
		{"rsa-legacy-des3.key", "rsa.crt", "test-pass", ""},
		{"ec-legacy-aes128.key", "ec.crt", "test-pass", ""},
		{"rsa-pkcs8-aes256.key", "rsa.crt", "", "no password was given"},
		{"rsa-legacy-aes256.key", "rsa.crt", "", "no password was given"},
		{"rsa-pkcs8-aes256.key", "rsa.crt", "wrong-pass", "password is incorrect"},
		{"ec-pkcs8-des3.key", "ec.crt", "wrong-pass", "password is incorrect"},
		{"rsa-legacy-aes256.key", "rsa.crt", "wrong-pass", "password is incorrect"},
		{"ec-legacy-aes128.key", "ec.crt", "wrong-pass", "password is incorrect"},
		{"rsa-pkcs8-pbes1.key", "rsa.crt", "test-pass", "legacy PBES1 encryption (1.2.840.113549.1.12.1.3) is not supported; re-encrypt with: openssl pkcs8 -topk8 -v2 aes-256-cbc"},
		{"rsa-pkcs8-scrypt.key", "rsa.crt", "test-pass", "scrypt key derivation is not supported"},
		{"ec-sec1.key", "rsa.crt", "", "private key does not match the certificate's public key"},
	}
	for _, tc := range cases {
		t.Run(tc.key+"/"+tc.password, func(t *testing.T) {
			_, err := LoadKeyPair(read(t, tc.cert), read(t, tc.key), []byte(tc.password))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("LoadKeyPair: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("LoadKeyPair = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMalformedKeys(t *testing.T) {
	good := read(t, "rsa-pkcs8-aes256.key")
	block, _ := pem.Decode(good)
	truncated := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes[:len(block.Bytes)/2]})
	badLen := append([]byte(nil), block.Bytes...)
	badLen = badLen[:len(badLen)-3]
	cases := []struct {
		name, pem, want string
	}{
		{"empty", "", "no PEM data found"},
		{"not pem", "hello", "no PEM data found"},
		{"only a certificate", string(read(t, "rsa.crt")), "no PRIVATE KEY block found"},
		{"garbage pkcs8", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "parse PRIVATE KEY"},
		{"garbage encrypted pkcs8", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "not an encrypted PKCS#8 key"},
		{"truncated encrypted pkcs8", string(truncated), "not an encrypted PKCS#8 key"},
		{"unknown type", "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n", `unsupported key block type "DSA PRIVATE KEY"`},
		{"proc-type without dek-info", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n", "without a usable DEK-Info"},
		{"bad ciphertext length", string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: badLen})), "not an encrypted PKCS#8 key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrivateKeyPEM([]byte(tc.pem), []byte("test-pass"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePrivateKeyPEM = %v, want error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "test-pass") {
				t.Fatal("error contains the password")
			}
		})
	}
}

// TestCertsRoundTrip encrypts keys with internal/certs in both formats and
// decrypts them here.
func TestCertsRoundTrip(t *testing.T) {
	ca, err := certs.NewRoot("ca", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []certs.KeyType{certs.ECDSAP256, certs.RSA2048} {
		leaf, err := ca.IssueClient("c", certs.Options{KeyType: kt})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []certs.KeyFormat{certs.PKCS8, certs.Legacy} {
			for _, pw := range []string{"", "s3cret"} {
				keyPEM, err := leaf.EncryptedKeyPEM(f, []byte(pw))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := LoadKeyPair(leaf.ChainPEM(), keyPEM, []byte(pw)); err != nil {
					t.Errorf("key type %d format %d password %q: %v", kt, f, pw, err)
				}
				if pw != "" {
					if _, err := LoadKeyPair(leaf.ChainPEM(), keyPEM, []byte("nope")); !errors.Is(err, ErrIncorrectKeyPassword) {
						t.Errorf("wrong password: %v", err)
					}
				}
			}
		}
	}
}

func TestParseVersionAndSuites(t *testing.T) {
	for in, want := range map[string]uint16{"": tls.VersionTLS12, "1.2": tls.VersionTLS12, "TLS1.3": tls.VersionTLS13, "tlsv1.2": tls.VersionTLS12, "13": tls.VersionTLS13} {
		if got, err := ParseVersion(in); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %x, %v", in, got, err)
		}
	}
	if _, err := ParseVersion("1.1"); err == nil || !strings.Contains(err.Error(), "minimum is 1.2") {
		t.Errorf("ParseVersion(1.1) = %v, want refusal", err)
	}
	if _, err := ParseVersion("1.4"); err == nil || !strings.Contains(err.Error(), `"1.4" is not a TLS version`) {
		t.Errorf("ParseVersion(1.4) = %v", err)
	}
	ids, err := ParseCipherSuites([]string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", " tls_ecdhe_ecdsa_with_chacha20_poly1305_sha256 "})
	if err != nil || len(ids) != 2 || ids[0] != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 {
		t.Errorf("ParseCipherSuites = %v, %v", ids, err)
	}
	_, err = ParseCipherSuites([]string{"TLS_RSA_WITH_RC4_128_SHA", "NOPE"})
	if err == nil || !strings.Contains(err.Error(), `"TLS_RSA_WITH_RC4_128_SHA" is insecure, "NOPE" is unknown`) {
		t.Errorf("ParseCipherSuites(bad) = %v", err)
	}
}

// TestClientReload rotates the client certificate and CA files and checks
// Config hands out the new material once Refresh has passed, keeping the
// old one when the new files are broken.
func TestClientReload(t *testing.T) {
	dir := t.TempDir()
	ca, _ := certs.NewRoot("ca", certs.Options{})
	first, _ := ca.IssueClient("first", certs.Options{})
	second, _ := ca.IssueClient("second", certs.Options{})
	caFile, _ := ca.WriteCert(dir, "ca", false)
	f1, err := first.WriteFiles(dir, "client", certs.PKCS8, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c, err := NewClient(ClientOptions{CAFile: caFile, CertFile: f1.Cert, KeyFile: f1.Key, KeyPassword: []byte("pw"),
		Refresh: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		cert, err := c.Config("127.0.0.1").GetClientCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.Subject.CommonName
	}
	if cn() != "first" {
		t.Fatal("initial certificate not served")
	}
	tmp := t.TempDir()
	f2, _ := second.WriteFiles(tmp, "client", certs.PKCS8, []byte("pw"))
	mustRename(t, f2.Cert, f1.Cert)
	mustRename(t, f2.Key, f1.Key)
	if cn() != "first" {
		t.Fatal("reloaded before Refresh elapsed")
	}
	now = now.Add(time.Minute)
	if cn() != "second" {
		t.Fatal("rotated certificate not reloaded")
	}
	// A half-written rotation (key missing) keeps the previous pair.
	if err := os.WriteFile(f1.Cert, first.ChainPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f1.Key); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if cn() != "second" {
		t.Fatal("broken rotation replaced the working certificate")
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
