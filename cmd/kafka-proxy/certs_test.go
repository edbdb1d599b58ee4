package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// TestCertsCommand: the certs subcommands build a root → intermediate →
// leaf PKI whose chains openssl verifies, whose PKCS#12 keystore and
// truststore Java's keytool reads, and whose certificates serve a real
// mTLS handshake through the proxy, the client's subject becoming its
// principal.
func TestCertsCommand(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPw, storePw := write("key.pw", "key-secret\n"), write("store.pw", "store-secret\n")
	certs := func(args ...string) {
		t.Helper()
		if code, stdout, stderr := run(t, append([]string{"certs"}, args...)...); code != 0 {
			t.Fatalf("certs %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	certs("ca", "--out", pki, "--cn", "Test Root", "--key-password-file", keyPw)
	issuer := []string{"--ca-cert", filepath.Join(pki, "kafka-ca.crt"), "--ca-key", filepath.Join(pki, "kafka-ca.key"), "--ca-key-password-file", keyPw, "--out", pki}
	certs("intermediate", "--ca-cert", filepath.Join(pki, "ca.crt"), "--ca-key", filepath.Join(pki, "ca.key"), "--ca-key-password-file", keyPw,
		"--out", pki, "--name", "kafka-ca", "--cn", "Kafka CA", "--key-password-file", keyPw)
	certs(append([]string{"server"}, append(issuer, "--name", "proxy", "--dns", "localhost", "--ip", "127.0.0.1", "--key-password-file", keyPw, "--store-password-file", storePw)...)...)
	certs(append([]string{"client"}, append(issuer, "--cn", "orders", "--o", "Acme", "--ou", "Payments", "--store-password-file", storePw, "--key-type", "rsa")...)...)

	// A second run without --force refuses to overwrite.
	if code, _, stderr := run(t, append([]string{"certs", "client"}, append(issuer, "--cn", "orders")...)...); code == 0 || !strings.Contains(stderr, "exists") {
		t.Errorf("overwrote without --force: exit %d %s", code, stderr)
	}
	for _, f := range []string{"ca.key", "kafka-ca.key", "proxy.key", "orders.key", "proxy.p12", "orders.p12"} {
		if st, err := os.Stat(filepath.Join(pki, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", f, err, st.Mode())
		}
	}

	tool := func(name string, args ...string) string {
		t.Helper()
		path, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("KAFKA_PROXY_E2E") != "" {
				t.Fatalf("%s not installed (scripts/install-test-deps.sh)", name)
			}
			t.Skipf("%s not installed", name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, leaf := range []string{"proxy.crt", "orders.crt"} {
		out := tool("openssl", "verify", "-CAfile", filepath.Join(pki, "ca.crt"), "-untrusted", filepath.Join(pki, "kafka-ca.crt"), filepath.Join(pki, leaf))
		if !strings.Contains(out, ": OK") {
			t.Errorf("openssl verify %s: %s", leaf, out)
		}
		// The full chain verifies with the root alone.
		out = tool("openssl", "verify", "-CAfile", filepath.Join(pki, "ca.crt"), "-untrusted", filepath.Join(pki, strings.TrimSuffix(leaf, ".crt")+"-fullchain.crt"), filepath.Join(pki, leaf))
		if !strings.Contains(out, ": OK") {
			t.Errorf("openssl verify %s with its full chain: %s", leaf, out)
		}
	}
	if out := tool("keytool", "-list", "-v", "-keystore", filepath.Join(pki, "orders.p12"), "-storetype", "PKCS12", "-storepass", "store-secret"); !strings.Contains(out, "PrivateKeyEntry") ||
		!strings.Contains(out, "Certificate chain length: 2") || !strings.Contains(out, "CN=orders, OU=Payments, O=Acme") {
		t.Errorf("keytool on the client keystore:\n%s", out)
	}
	if out := tool("keytool", "-list", "-keystore", filepath.Join(pki, "truststore.p12"), "-storetype", "PKCS12", "-storepass", "store-secret"); !strings.Contains(out, "trustedCertEntry") {
		t.Errorf("keytool on the truststore:\n%s", out)
	}

	// mTLS through the proxy with the new certificates.
	cluster := newCluster(t, kfake.SeedTopics(1, "t"))
	p := start(t, serverArgs(cluster.ListenAddrs()[0], "--log-level", "debug",
		"--proxy-listener-tls-enable",
		"--proxy-listener-cert-file", filepath.Join(pki, "proxy.crt"),
		"--proxy-listener-key-file", filepath.Join(pki, "proxy.key"),
		"--proxy-listener-key-password", "key-secret",
		"--proxy-listener-ca-chain-cert-file", filepath.Join(pki, "ca.crt"))...)
	p.waitLog("kafka-proxy started")
	bootstrap := p.listeners()[cluster.ListenAddrs()[0]]
	certPEM, _ := os.ReadFile(filepath.Join(pki, "orders.crt"))
	keyPEM, _ := os.ReadFile(filepath.Join(pki, "orders.key"))
	pair, err := tlsconf.LoadKeyPair(certPEM, keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	rootPEM, _ := os.ReadFile(filepath.Join(pki, "ca.crt"))
	roots.AppendCertsFromPEM(rootPEM)
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic("t"),
		kgo.DialTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over mTLS")}).FirstErr(); err != nil {
		t.Fatalf("produce over mTLS with the new certificates: %v", err)
	}
	if got := p.waitLog("connection admitted")["principal"]; got != "User:CN=orders,OU=Payments,O=Acme" {
		t.Errorf("principal %v, want the client certificate's subject", got)
	}
}
