package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// listenerFiles writes a server certificate and the client CA for root.
func listenerFiles(t *testing.T, dir string, root *certs.Authority, cn string) (certFile, keyFile, caFile string) {
	t.Helper()
	srv, err := root.IssueServer(cn, []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
	for path, data := range map[string][]byte{certFile: srv.ChainPEM(), keyFile: srv.KeyPEM(), caFile: root.CertPEM()} {
		replaceFile(t, path, data)
	}
	return certFile, keyFile, caFile
}

// replaceFile writes data to path by rename, as rotations do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func crlPEM(t *testing.T, ca *certs.Authority, revoked ...*x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour)}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// serve runs a listener on cfg; dial completes a handshake with it.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if c.(*tls.Conn).Handshake() == nil {
				_, _ = c.Write([]byte{1}) // the client learns the server accepted it
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

func dial(addr string, roots *x509.CertPool, cert *tls.Certificate) (*x509.Certificate, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil { // TLS 1.3: a refused certificate shows here
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestServerCRL: a client certificate the CA revoked is refused, another
// of the same CA is served; a CRL not signed by the client CA is an error.
func TestServerCRL(t *testing.T) {
	root, err := certs.NewRoot("ca", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, caFile := listenerFiles(t, dir, root, "srv")
	good, err := root.IssueClient("good", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := root.IssueClient("bad", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "crl.pem")
	replaceFile(t, crlFile, crlPEM(t, root, bad.Cert))
	cfg, err := ServerConfig(ServerOptions{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, CRLFile: crlFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	gc, bc := good.TLSCertificate(), bad.TLSCertificate()
	if _, err := dial(addr, pool, &gc); err != nil {
		t.Fatalf("unrevoked certificate: %v", err)
	}
	if _, err := dial(addr, pool, &bc); err == nil {
		t.Fatal("revoked certificate served")
	}

	other, _ := certs.NewRoot("other", certs.Options{})
	replaceFile(t, crlFile, crlPEM(t, other, bad.Cert))
	if _, err := ServerConfig(ServerOptions{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, CRLFile: crlFile}); err == nil {
		t.Fatal("a CRL signed by another CA was accepted")
	}
	if _, err := ServerConfig(ServerOptions{CertFile: certFile, KeyFile: keyFile, CRLFile: crlFile}); err == nil {
		t.Fatal("a CRL without a client CA was accepted")
	}

	// A CRL past its next update is still enforced, with a warning.
	replaceFile(t, crlFile, crlPEM(t, root, bad.Cert))
	var logs strings.Builder
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	cfg, err = ServerConfig(ServerOptions{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, CRLFile: crlFile,
		Now: later, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "past its next update") {
		t.Errorf("no warning for a stale CRL: %q", logs.String())
	}
	if _, err := dial(serve(t, cfg), pool, &bc); err == nil {
		t.Fatal("revoked certificate served under a stale CRL")
	}
}

// TestServerRefresh: a rotated server certificate and a new CRL are
// served after Refresh, without a new listener; a broken rotation keeps
// the old files in force.
func TestServerRefresh(t *testing.T) {
	root, err := certs.NewRoot("ca", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, caFile := listenerFiles(t, dir, root, "first")
	client, err := root.IssueClient("app", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "crl.pem")
	replaceFile(t, crlFile, crlPEM(t, root))
	now := time.Now()
	clock := func() time.Time { return now }
	s, err := NewServer(ServerOptions{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, CRLFile: crlFile, Refresh: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.Config())
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	cc := client.TLSCertificate()
	leaf, err := dial(addr, pool, &cc)
	if err != nil || leaf.Subject.CommonName != "first" {
		t.Fatalf("first: %v %v", leaf, err)
	}

	listenerFiles(t, dir, root, "second")
	replaceFile(t, crlFile, crlPEM(t, root, client.Cert))
	if leaf, err = dial(addr, pool, nil); err == nil || leaf != nil {
		// no client certificate: refused whatever the files
		t.Fatalf("no client certificate served")
	}
	if leaf, err := dial(addr, pool, &cc); err != nil || leaf.Subject.CommonName != "first" {
		t.Fatalf("before Refresh: %v %v, want the first certificate still", leaf, err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := dial(addr, pool, &cc); err == nil {
		t.Fatal("after Refresh: the newly revoked client certificate was served")
	}
	other, _ := root.IssueClient("other", certs.Options{})
	oc := other.TLSCertificate()
	if leaf, err := dial(addr, pool, &oc); err != nil || leaf.Subject.CommonName != "second" {
		t.Fatalf("after Refresh: %v %v, want the rotated certificate", leaf, err)
	}

	replaceFile(t, keyFile, []byte("not a key"))
	now = now.Add(2 * time.Minute)
	if leaf, err := dial(addr, pool, &oc); err != nil || leaf.Subject.CommonName != "second" {
		t.Fatalf("after a broken rotation: %v %v, want the previous material", leaf, err)
	}
}

// TestServerRecheckAll: without a refresh interval, rotated files are
// picked up only after RecheckAll (SIGHUP), at the next handshake.
func TestServerRecheckAll(t *testing.T) {
	root, err := certs.NewRoot("ca", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, _ := listenerFiles(t, dir, root, "first")
	s, err := NewServer(ServerOptions{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.Config())
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	listenerFiles(t, dir, root, "second")
	if leaf, err := dial(addr, pool, nil); err != nil || leaf.Subject.CommonName != "first" {
		t.Fatalf("before RecheckAll: %v %v, want the first certificate (no refresh interval)", leaf, err)
	}
	RecheckAll()
	if leaf, err := dial(addr, pool, nil); err != nil || leaf.Subject.CommonName != "second" {
		t.Fatalf("after RecheckAll: %v %v, want the rotated certificate", leaf, err)
	}
}
