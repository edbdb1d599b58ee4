package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

func TestParseCurves(t *testing.T) {
	ids, err := ParseCurves([]string{"P256", " x25519 ", "secp384r1", "P521"})
	if err != nil || len(ids) != 4 || ids[0] != tls.CurveP256 || ids[1] != tls.X25519 || ids[2] != tls.CurveP384 || ids[3] != tls.CurveP521 {
		t.Fatalf("ParseCurves = %v, %v", ids, err)
	}
	if ids, err := ParseCurves(nil); ids != nil || err != nil {
		t.Fatalf("ParseCurves(nil) = %v, %v", ids, err)
	}
	if _, err := ParseCurves([]string{"P256", "brainpool"}); err == nil {
		t.Fatal("unknown curve accepted")
	}
}

// TestServerCurvePreferences: a listener limited to P-384 completes a
// handshake with a client offering P-384 (and negotiates it), and refuses
// one offering only X25519.
func TestServerCurvePreferences(t *testing.T) {
	root, err := certs.NewRoot("ca", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("srv", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certFile, srv.ChainPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, srv.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerConfig(ServerOptions{CertFile: certFile, KeyFile: keyFile, CurvePreferences: []tls.CurveID{tls.CurveP384}})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	handshake := func(curves ...tls.CurveID) (tls.ConnectionState, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
			&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", CurvePreferences: curves})
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}
	st, err := handshake(tls.X25519, tls.CurveP384)
	if err != nil || st.CurveID != tls.CurveP384 {
		t.Fatalf("P-384 client: curve %v, %v", st.CurveID, err)
	}
	if _, err := handshake(tls.X25519); err == nil {
		t.Fatal("a client without P-384 completed the handshake")
	}
}
