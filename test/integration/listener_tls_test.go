package integration

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// TestListenerTLS: the proxy terminates TLS (and verifies client
// certificates) towards clients; a plaintext client on the TLS listener is
// told so in the log in those words.
func TestListenerTLS(t *testing.T) {
	root, err := certs.NewRoot("proxy test CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("proxy", []string{"127.0.0.1", "localhost"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := root.IssueClient("app", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	write := tempWriter(t)
	certFile, keyFile, caFile := write("srv.pem", srv.ChainPEM()), write("srv.key", srv.KeyPEM()), write("ca.pem", root.CertPEM())
	_, p := setup(t, func(c *config.Config) {
		c.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: certFile, KeyFile: keyFile, CAChainCertFile: caFile}
	})
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	tlsDial := func(cert *tls.Certificate) func(ctx context.Context, network, host string) (net.Conn, error) {
		return func(ctx context.Context, network, host string) (net.Conn, error) {
			raw, err := p.DialContext(ctx, network, host)
			if err != nil {
				return nil, err
			}
			cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
			if cert != nil {
				cfg.Certificates = []tls.Certificate{*cert}
			}
			tc := tls.Client(raw, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	ctx := ctxT(t, 60*time.Second)
	cert := cli.TLSCertificate()
	good := franzClient(t, p, kgo.Dialer(tlsDial(&cert)), kgo.DefaultProduceTopic("tls-topic"), kgo.AllowAutoTopicCreation())
	want := keyedValues(100)
	produceAll(ctx, t, good, want)
	cons := franzClient(t, p, kgo.Dialer(tlsDial(&cert)), kgo.ConsumeTopics("tls-topic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := newSeen()
	for got.count() < len(want) && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
	}
	got.check(t, want, false)

	// No client certificate: the handshake is refused.
	noCert := franzClient(t, p, kgo.Dialer(tlsDial(nil)), kgo.RetryTimeout(time.Second), kgo.RequestRetries(0))
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := noCert.Ping(pctx); err == nil {
		t.Errorf("client without a certificate was served")
	}

	// Plaintext Kafka on the TLS listener.
	plain := franzClient(t, p, kgo.RetryTimeout(time.Second))
	pctx2, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	_ = plain.Ping(pctx2)
	if !p.Logs.WaitFor(5*time.Second, "client speaks plaintext", "TLS listener") {
		t.Errorf("plaintext client on the TLS listener not explained in the log:\n%s", p.Logs.String())
	}
}

// TestListenerPrincipal: a client certificate's subject becomes the
// principal through Kafka's ssl.principal.mapping.rules, a certificate no
// rule maps is refused after the handshake, as a broker fails its SSL
// authentication, and so is one meeting none of the required subjects.
func TestListenerPrincipal(t *testing.T) {
	root, err := certs.NewRoot("proxy test CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("proxy", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name pkix.Name) tls.Certificate {
		c, err := root.IssueClient("", certs.Options{Subject: &name})
		if err != nil {
			t.Fatal(err)
		}
		return c.TLSCertificate()
	}
	service := issue(pkix.Name{CommonName: "Orders-App", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"acme"}})
	stranger := issue(pkix.Name{CommonName: "stranger", Organization: []string{"elsewhere"}})
	write := tempWriter(t)
	_, p := setup(t, func(c *config.Config) {
		c.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: write("srv.pem", srv.ChainPEM()), KeyFile: write("srv.key", srv.KeyPEM()),
			CAChainCertFile: write("ca.pem", root.CertPEM()), PrincipalMappingRules: `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L`,
			RequiredClientSubjects: []string{`r:/O=[^acme$]`, `s:/CN=[stranger]`}}
	})
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	dialAs := func(cert tls.Certificate) kgo.Opt {
		return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			raw, err := p.DialContext(ctx, network, host)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		})
	}
	ctx := ctxT(t, 30*time.Second)
	good := franzClient(t, p, dialAs(service), kgo.DefaultProduceTopic("principal-topic"), kgo.AllowAutoTopicCreation())
	produceAll(ctx, t, good, keyedValues(5))
	if !p.Logs.WaitFor(5*time.Second, "connection admitted", "principal=User:orders-app") {
		t.Errorf("no connection admitted as User:orders-app:\n%s", p.Logs.String())
	}

	bad := franzClient(t, p, dialAs(stranger), kgo.RetryTimeout(time.Second), kgo.RequestRetries(0))
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := bad.Ping(pctx); err == nil {
		t.Error("a certificate no rule maps was served")
	}
	if !p.Logs.WaitFor(5*time.Second, "principal: no principal mapping rule applies", "CN=stranger,O=elsewhere") {
		t.Errorf("refused certificate not explained in the log:\n%s", p.Logs.String())
	}

	// --proxy-listener-tls-required-client-subject: a CA-signed
	// certificate meeting neither required subject is refused first.
	outsider := franzClient(t, p, dialAs(issue(pkix.Name{CommonName: "outsider", Organization: []string{"acme-labs"}})), kgo.RetryTimeout(time.Second), kgo.RequestRetries(0))
	if err := outsider.Ping(pctx); err == nil {
		t.Error("a certificate meeting no required subject was served")
	}
	if !p.Logs.WaitFor(5*time.Second, "client-subject: client certificate subject", "outsider", "meets no required subject") {
		t.Errorf("required-subject refusal not explained in the log:\n%s", p.Logs.String())
	}
}

// tempWriter returns a function writing files into a fresh temporary
// directory and returning their paths.
func tempWriter(t *testing.T) func(name string, data []byte) string {
	dir := t.TempDir()
	return func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

// TestListenerRotationAndRevocation: through the running proxy, a rotated
// listener certificate and a new CRL take effect without a restart
// (--proxy-listener-tls-refresh): new connections get the new certificate
// and a client the CA has since revoked is refused.
func TestListenerRotationAndRevocation(t *testing.T) {
	root, err := certs.NewRoot("proxy test CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := root.IssueServer("proxy-first", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := root.IssueClient("app", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crl := func(revoked ...*x509.Certificate) []byte {
		tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		for _, c := range revoked {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now()})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, root.Cert, root.Key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	write := tempWriter(t)
	certFile, keyFile, caFile, crlFile := write("srv.pem", first.ChainPEM()), write("srv.key", first.KeyPEM()), write("ca.pem", root.CertPEM()), write("crl.pem", crl())
	_, p := setup(t, func(c *config.Config) {
		c.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: certFile, KeyFile: keyFile, CAChainCertFile: caFile, CRLFile: crlFile, Refresh: 50 * time.Millisecond}
	})
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	cc := client.TLSCertificate()
	// handshake dials the proxy's bootstrap listener and reports the
	// certificate it showed, after a Kafka round trip proved it served us.
	handshake := func() (string, error) {
		var served atomic.Value
		served.Store("")
		cl := franzClient(t, p, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			raw, err := p.DialContext(ctx, network, host)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cc}, MinVersion: tls.VersionTLS12})
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			served.Store(tc.ConnectionState().PeerCertificates[0].Subject.CommonName)
			return tc, nil
		}), kgo.RetryTimeout(time.Second), kgo.RequestRetries(0))
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := cl.Ping(ctx)
		return served.Load().(string), err
	}
	if cn, err := handshake(); err != nil || cn != "proxy-first" {
		t.Fatalf("before rotation: %q, %v", cn, err)
	}

	second, err := root.IssueServer("proxy-second", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{certFile: second.ChainPEM(), keyFile: second.KeyPEM()} {
		if err := os.WriteFile(path+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // past the refresh interval
	if cn, err := handshake(); err != nil || cn != "proxy-second" {
		t.Fatalf("after rotation: %q, %v; want the rotated certificate", cn, err)
	}
	if !p.Logs.WaitFor(time.Second, "listener tls files reloaded") {
		t.Errorf("reload not logged:\n%s", p.Logs.String())
	}

	if err := os.WriteFile(crlFile+".new", crl(client.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(crlFile+".new", crlFile); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := handshake(); err == nil {
		t.Fatal("a client certificate revoked by the new CRL was served")
	}
}

// TestSameClientCert: with --tls-same-client-cert-enable, the proxy's TLS
// listener serves a client presenting the proxy's own upstream client
// certificate (the one the mTLS broker accepts from the proxy) and refuses
// any other certificate its CA would accept, with a log line saying why.
func TestSameClientCert(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.MTLS, memkafka.WithBrokers(1))
	srv, err := c.Intermediate.IssueServer("proxy", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	write := tempWriter(t)
	p := kafkatest.StartProxy(t, c.Addrs, func(cfg *config.Config) {
		cfg.Kafka = c.Kafka
		cfg.Kafka.TLS.SameClientCertEnable = true
		cfg.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: write("srv.pem", srv.ChainPEM()), KeyFile: write("srv.key", srv.KeyPEM()),
			CAChainCertFile: c.Kafka.TLS.CAChainCertFile}
	})
	roots := x509.NewCertPool()
	roots.AddCert(c.Root.Cert)
	same, err := tls.LoadX509KeyPair(c.Kafka.TLS.ClientCertFile, c.Kafka.TLS.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	otherFiles, err := c.WriteClientCert("other-app", certs.Options{}, certs.PKCS8, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := tls.LoadX509KeyPair(otherFiles.Cert, otherFiles.Key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	if err := franzClient(t, p, mtlsDialer(p, roots, same)).Ping(ctx); err != nil {
		t.Fatalf("client with the proxy's own certificate: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := franzClient(t, p, mtlsDialer(p, roots, other), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)).Ping(pctx); err == nil {
		t.Fatal("a client with another certificate was served")
	}
	if !p.Logs.WaitFor(5*time.Second, "is not the proxy's upstream client certificate (--tls-same-client-cert-enable)") {
		t.Errorf("refusal not logged:\n%s", p.Logs.String())
	}
}
