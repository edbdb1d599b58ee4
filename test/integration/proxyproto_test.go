package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

const haproxyBin = "/usr/sbin/haproxy"

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startHAProxy runs Debian's haproxy in TCP mode on listen, in front of
// backend, sending a PROXY protocol header (send is "send-proxy" for v1
// or "send-proxy-v2"), until t ends.
func startHAProxy(t *testing.T, listen, backend, send string) {
	t.Helper()
	if _, err := os.Stat(haproxyBin); err != nil {
		if os.Getenv("KAFKA_PROXY_E2E") != "" {
			t.Fatalf("haproxy is not installed (scripts/install-test-deps.sh installs it): %v", err)
		}
		t.Skip("haproxy is not installed: run scripts/install-test-deps.sh")
	}
	cfg := fmt.Sprintf(`global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend kafka
  bind %s
  default_backend proxy
backend proxy
  server kafka-proxy %s %s
`, listen, backend, send)
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxyBin, "-db", "-f", file)
	out := &kafkatest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s:\n%s", listen, out.String())
		}
	}
}

// fromAddr is a franz-go client that reaches only the balancer, from a
// loopback address of its own.
func fromAddr(t *testing.T, seed, ip string, opts ...kgo.Opt) *kgo.Client {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed), kgo.RecordRetries(1), kgo.RetryTimeout(2 * time.Second),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			if host != seed {
				return nil, fmt.Errorf("client asked to dial %s, not the balancer %s", host, seed)
			}
			return d.DialContext(ctx, network, host)
		})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestProxyProtocolHAProxy: behind a real HAProxy sending PROXY protocol
// v2 (and v1), the proxy's IP filter, ACL hosts and logs see the client's
// own address, not the balancer's.
func TestProxyProtocolHAProxy(t *testing.T) {
	for _, tc := range []struct{ send, mode string }{{"send-proxy-v2", "required"}, {"send-proxy", "optional"}} {
		t.Run(tc.send, func(t *testing.T) {
			c, err := memkafka.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			balancer := freePort(t)
			rules := tempWriter(t)("acls.yaml", []byte(`acls:
  - principal: User:ANONYMOUS
    resource: {type: topic, name: t}
    operations: [Write, Describe]
    host: 127.0.0.7
  - principal: User:ANONYMOUS
    resource: {type: cluster}
    operation: IdempotentWrite
`))
			p := kafkatest.StartProxy(t, nil, func(cfg *config.Config) {
				cfg.Proxy.BootstrapServers = []config.Mapping{{Upstream: c.ListenAddrs()[0], Listen: "127.0.0.1:0", Advertised: balancer}}
				cfg.Proxy.Admission.ProxyProtocol = tc.mode
				cfg.Proxy.Admission.ProxyProtocolTrustedCIDRs = []string{"127.0.0.1/32"}
				cfg.Proxy.Admission.DenyCIDRs = []string{"127.0.0.8"}
				cfg.ACL.Files = []string{rules}
			})
			startHAProxy(t, balancer, p.Bootstrap, tc.send)
			ctx := ctxT(t, 30*time.Second)

			good := fromAddr(t, balancer, "127.0.0.7")
			if err := good.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("produce from 127.0.0.7 (the ACL's host): %v", err)
			}
			if !p.Logs.WaitFor(5*time.Second, "connection admitted", "client=127.0.0.7:") {
				t.Errorf("the log does not name the real client:\n%s", p.Logs.String())
			}
			other := fromAddr(t, balancer, "127.0.0.9")
			if err := other.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); !isTopicDenied(err) {
				t.Fatalf("produce from 127.0.0.9: %v, want %v", err, kerr.TopicAuthorizationFailed)
			}
			denied := fromAddr(t, balancer, "127.0.0.8")
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if err := denied.Ping(pctx); err == nil {
				t.Fatal("127.0.0.8 served through the balancer: the filter saw the balancer, not the client")
			}
			if got := rejected(t, p, "ip-denied"); got < 1 {
				t.Errorf("ip-denied counted %v", got)
			}
			// Straight to the proxy: a header is required in one mode and
			// optional in the other.
			if got, want := served(t, dialFrom(t, p, "127.0.0.1")), tc.mode == "optional"; got != want {
				t.Errorf("a connection without a header served: %v, want %v", got, want)
			}
		})
	}
}

// TestProxyProtocolUntrusted: a header from a peer outside the trusted
// balancers is refused, so a client cannot claim another's address.
func TestProxyProtocolUntrusted(t *testing.T) {
	_, p := setup(t, func(cfg *config.Config) {
		cfg.Proxy.Admission.ProxyProtocol = "optional"
		cfg.Proxy.Admission.ProxyProtocolTrustedCIDRs = []string{"127.0.0.1/32"}
	})
	conn := dialFrom(t, p, "127.0.0.3")
	if _, err := conn.Write([]byte("PROXY TCP4 10.9.9.9 127.0.0.1 1234 9092\r\n")); err != nil {
		t.Fatal(err)
	}
	if served(t, conn) {
		t.Fatal("a PROXY header from an untrusted peer was accepted")
	}
	if !p.Logs.WaitFor(5*time.Second, "not a trusted balancer") {
		t.Errorf("refusal not logged:\n%s", p.Logs.String())
	}
}
