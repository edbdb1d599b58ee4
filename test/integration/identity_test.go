package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// topicWriter is a broker-side ACL letting a user produce to one topic.
func topicWriter(topic string) kfake.ACL {
	return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationWrite, Allow: true}
}

// identityCluster is a broker with SASL and ACLs of its own: the proxy's
// default user "admin" is a super user, "svc-orders" (SCRAM-SHA-256) may
// write "orders" only and "svc-billing" (PLAIN) "billing" only. Sessions
// last reauth (0: no expiry).
func identityCluster(t *testing.T, reauth time.Duration) *memkafka.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin-secret"),
		kfake.User("SCRAM-SHA-256", "svc-orders", "orders-secret", topicWriter("orders")),
		kfake.User("PLAIN", "svc-billing", "billing-secret", topicWriter("billing")),
	}
	if reauth > 0 {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": strconv.FormatInt(reauth.Milliseconds(), 10)}))
	}
	c, err := memkafka.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	admin := adminClient(t, c.ListenAddrs())
	if _, err := kadm.NewClient(admin).CreateTopics(ctxT(t, 10*time.Second), 1, 1, nil, "orders", "billing"); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	return c
}

// identityFile maps alice to svc-orders and bob to svc-billing; carol has
// no entry.
func identityFile(t *testing.T) string {
	write := tempWriter(t)
	orders := write("orders.password", []byte("orders-secret\n"))
	billing := write("billing.password", []byte("billing-secret\n"))
	return write("identities.yaml", []byte(`identities:
  - principal: User:alice
    sasl: {method: SCRAM-SHA-256, username: svc-orders, passwordFile: `+orders+`}
  - principal: User:bob
    sasl:
      username: svc-billing
      passwordFile: `+billing+`
`))
}

// identityProxy terminates SASL/PLAIN for alice, bob and carol in front of
// c, as the default user "admin" unless the identity file maps the client.
func identityProxy(t *testing.T, c *memkafka.Cluster, required bool) *kafkatest.Proxy {
	t.Helper()
	return identityProxyWith(t, c, required, identityFile(t))
}

// identityProxyWith is identityProxy with the identity file ids.
func identityProxyWith(t *testing.T, c *memkafka.Cluster, required bool, ids string) *kafkatest.Proxy {
	t.Helper()
	users := kafkatest.WriteUsers(t, map[string]string{"alice": "a-secret", "bob": "b-secret", "carol": "c-secret"})
	p := kafkatest.StartProxy(t, c.ListenAddrs(), func(cfg *config.Config) {
		cfg.Kafka.SASL = config.SASL{Enable: true, Method: "PLAIN", Username: "admin", Password: "admin-secret"}
		cfg.Kafka.IdentityFile, cfg.Kafka.IdentityRequired = ids, required
		cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalPlain}, UsersFile: users}
	})
	t.Cleanup(func() { p.CheckNoBypass(t) })
	return p
}

func produceAs(ctx context.Context, t *testing.T, p *kafkatest.Proxy, user, pass, topic string) error {
	cl := franzClient(t, p, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()), kgo.RecordRetries(1), kgo.RetryTimeout(5*time.Second))
	defer cl.Close()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(user)}).FirstErr()
}

// TestUpstreamIdentity: each client reaches the broker as its own SASL
// user, so the broker's own ACLs decide per service (the proxy enforces
// none here); an unmapped client uses the default user, or fails
// authentication when an identity is required.
func TestUpstreamIdentity(t *testing.T) {
	c := identityCluster(t, 0)
	ctx := ctxT(t, 60*time.Second)
	p := identityProxy(t, c, false)
	for _, tc := range []struct {
		user, pass, topic string
		denied            bool
	}{
		{"alice", "a-secret", "orders", false},
		{"alice", "a-secret", "billing", true},
		{"bob", "b-secret", "billing", false},
		{"bob", "b-secret", "orders", true},
		{"carol", "c-secret", "orders", false}, // the default identity: a super user
		{"carol", "c-secret", "billing", false},
	} {
		err := produceAs(ctx, t, p, tc.user, tc.pass, tc.topic)
		if tc.denied != errors.Is(err, kerr.TopicAuthorizationFailed) || (!tc.denied && err != nil) {
			t.Errorf("%s producing to %s: %v (denied by the broker expected: %v)", tc.user, tc.topic, err, tc.denied)
		}
	}
	mechs := map[string]float64{}
	for _, m := range []string{"PLAIN", "SCRAM-SHA-256"} {
		mechs[m] = p.MetricSum(t, "proxy_upstream_auth_total", func(l map[string]string) bool {
			return l["mechanism"] == m && l["result"] == "success"
		})
	}
	if mechs["SCRAM-SHA-256"] == 0 || mechs["PLAIN"] == 0 {
		t.Errorf("upstream authentications by mechanism: %v, want alice's SCRAM and the others' PLAIN", mechs)
	}

	t.Run("required", func(t *testing.T) {
		p := identityProxy(t, c, true)
		if err := produceAs(ctx, t, p, "alice", "a-secret", "orders"); err != nil {
			t.Errorf("alice: %v", err)
		}
		err := produceAs(ctx, t, p, "carol", "c-secret", "orders")
		if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), "no upstream identity") {
			t.Errorf("carol without an identity: %v, want SASL_AUTHENTICATION_FAILED naming the missing identity", err)
		}
	})
}

// TestUpstreamIdentityReload: SIGHUP rereads the identity file. Alice's
// new connections reach the broker as the user the new file names; a file
// with a mistake keeps the identities in force.
func TestUpstreamIdentityReload(t *testing.T) {
	c := identityCluster(t, 0)
	ctx := ctxT(t, 60*time.Second)
	ids := identityFile(t)
	p := identityProxyWith(t, c, false, ids)
	expect := func(topic string, denied bool) {
		t.Helper()
		err := produceAs(ctx, t, p, "alice", "a-secret", topic)
		if denied != errors.Is(err, kerr.TopicAuthorizationFailed) || (!denied && err != nil) {
			t.Fatalf("alice producing to %s: %v (denied by the broker expected: %v)", topic, err, denied)
		}
	}
	hangup := func(logLine string) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if !p.Logs.WaitFor(5*time.Second, logLine) {
			t.Fatalf("no %q in the log after SIGHUP", logLine)
		}
	}
	expect("orders", false)
	expect("billing", true)

	billing := filepath.Join(filepath.Dir(ids), "billing.password")
	swapped := "identities:\n  - principal: User:alice\n    sasl: {method: PLAIN, username: svc-billing, passwordFile: " + billing + "}\n"
	if err := os.WriteFile(ids, []byte(swapped), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup("upstream identities reloaded")
	expect("billing", false)
	expect("orders", true)

	if err := os.WriteFile(ids, []byte("identities:\n  - principal: User:alice\n    sasl: {username: svc-x, passwordFile: /nonexistent}\n    colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup("upstream identity file not reloaded")
	expect("billing", false)
}

// TestUpstreamIdentityReauthentication: with a 2 s broker session, a
// mapped client's connection re-authenticates as its own user (the broker
// refuses a re-authentication that changes the user) and keeps producing.
func TestUpstreamIdentityReauthentication(t *testing.T) {
	c := identityCluster(t, 2*time.Second)
	p := identityProxy(t, c, false)
	ctx := ctxT(t, 60*time.Second)
	cl := franzClient(t, p, kgo.SASL(plain.Auth{User: "alice", Pass: "a-secret"}.AsMechanism()), kgo.RecordRetries(1), kgo.ConnIdleTimeout(time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("o")}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "billing", Value: []byte("b")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("after re-authentication alice produced to billing: %v, want the broker's TOPIC_AUTHORIZATION_FAILED", err)
	}
	reauths := p.MetricSum(t, "proxy_upstream_auth_total", func(l map[string]string) bool {
		return l["mechanism"] == "SCRAM-SHA-256" && l["result"] == "reauthenticated"
	})
	if reauths < 2 {
		t.Errorf("%v SCRAM re-authentications in 5 s with a 2 s session, want at least 2", reauths)
	}
}

// TestUpstreamIdentityCertificate: an mTLS client named by its certificate
// reaches an mTLS broker with the certificate its identity names; an
// unmapped one with the proxy's default certificate.
func TestUpstreamIdentityCertificate(t *testing.T) {
	root, err := certs.NewRoot("identity test CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string) *certs.Issued {
		c, err := root.IssueClient("", certs.Options{Subject: &pkix.Name{CommonName: cn}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server, err := root.IssueServer("kafka", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	var mu sync.Mutex
	seen := map[string]int{} // client certificate names the broker saw
	brokerTLS := &tls.Config{Certificates: []tls.Certificate{server.TLSCertificate()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			mu.Lock()
			seen[cs.PeerCertificates[0].Subject.CommonName]++
			mu.Unlock()
			return nil
		}}
	// kfake itself, without the plaintext frame guard of memkafka.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"), kfake.TLS(brokerTLS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)

	write := tempWriter(t)
	proxyCert, svcCert := issue("proxy"), issue("svc-orders")
	ids := write("identities.yaml", []byte(`identities:
  - principal: User:CN=orders-service
    tls:
      clientCertFile: `+write("svc.pem", svcCert.ChainPEM())+`
      clientKeyFile: `+write("svc.key", svcCert.KeyPEM())+`
`))
	srv, err := root.IssueServer("proxy", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := func(required bool, trail string) *kafkatest.Proxy {
		p := kafkatest.StartProxy(t, cluster.ListenAddrs(), func(c *config.Config) {
			c.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: write("srv.pem", srv.ChainPEM()), KeyFile: write("srv.key", srv.KeyPEM()),
				CAChainCertFile: write("ca.pem", root.CertPEM())}
			c.Kafka.TLS = config.TLS{Enable: true, CAChainCertFile: write("broker-ca.pem", root.CertPEM()),
				ClientCertFile: write("proxy.pem", proxyCert.ChainPEM()), ClientKeyFile: write("proxy.key", proxyCert.KeyPEM())}
			c.Kafka.IdentityFile, c.Kafka.IdentityRequired = ids, required
			c.Audit.Log = trail
		})
		t.Cleanup(func() { p.CheckNoBypass(t) })
		return p
	}
	client := func(p *kafkatest.Proxy, name string) *kgo.Client {
		return franzClient(t, p, mtlsDialer(p, pool, issue(name).TLSCertificate()), kgo.RecordRetries(1), kgo.RetryTimeout(3*time.Second))
	}
	p := start(false, "")
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct{ client, want, never string }{
		{"orders-service", "svc-orders", ""},
		{"reports-service", "proxy", "svc-orders"},
	} {
		mu.Lock()
		clear(seen)
		mu.Unlock()
		cl := client(p, tc.client)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte(tc.client)}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", tc.client, err)
		}
		cl.Close()
		mu.Lock()
		got := maps.Clone(seen)
		mu.Unlock()
		if got[tc.want] == 0 || (tc.never != "" && got[tc.never] != 0) {
			t.Errorf("client %s: the broker saw certificates %v, want %s's", tc.client, got, tc.want)
		}
	}

	// Required: the unmapped client is refused before any dial, and the
	// audit trail says why.
	trail := filepath.Join(t.TempDir(), "audit.log")
	strict := start(true, trail)
	if err := client(strict, "orders-service").ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("o")}).FirstErr(); err != nil {
		t.Errorf("mapped client with identities required: %v", err)
	}
	if err := client(strict, "reports-service").ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("r")}).FirstErr(); err == nil {
		t.Error("unmapped client produced with identities required")
	}
	line := waitAudit(t, trail, map[string]any{"event": "connection-rejected", "principal": "User:CN=reports-service"})
	if reason, _ := line["reason"].(string); !strings.Contains(reason, "no upstream identity for User:CN=reports-service") {
		t.Errorf("audit reason %q", reason)
	}
}
