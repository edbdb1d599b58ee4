package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
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
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
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
