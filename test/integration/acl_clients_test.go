package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	kgplain "github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// aclClientRules: alice may produce to and consume "orders" in group
// "orders-app"; "payments" exists but is not hers.
const aclClientRules = `acls:
  - principal: User:alice
    resource: {type: topic, name: orders}
    operations: [Read, Write]
  - principal: User:alice
    resource: {type: group, name: orders-app}
    operation: Read
`

// aclSASLProxy is a proxy terminating SASL/PLAIN for alice and enforcing
// rules, in front of a cluster holding "orders" and "payments".
func aclSASLProxy(t *testing.T, rules string, refresh time.Duration) (*kafkatest.Proxy, string) {
	t.Helper()
	users := kafkatest.WriteUsers(t, map[string]string{"alice": "alice-secret"})
	file := tempWriter(t)("acls.yaml", []byte(rules))
	c, p := setup(t, func(cfg *config.Config) {
		cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalPlain}, UsersFile: users}
		cfg.ACL.Files, cfg.ACL.Refresh = []string{file}, refresh
	}, kfake.SeedTopics(1, "orders", "payments"))
	_ = c
	return p, file
}

func isTopicDenied(err error) bool { return errors.Is(err, kerr.TopicAuthorizationFailed) }

// TestACLClients: franz-go, sarama and kafka-go through the proxy produce
// and consume the topic alice may use, and each reports the
// authorization error by name for the one she may not.
func TestACLClients(t *testing.T) {
	p, _ := aclSASLProxy(t, aclClientRules, 0)
	ctx := ctxT(t, 90*time.Second)
	alice := kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())

	t.Run("franz-go", func(t *testing.T) {
		prod := franzClient(t, p, alice, kgo.RecordRetries(1))
		want := keyedValues(20)
		produceAll(ctx, t, franzClient(t, p, alice, kgo.DefaultProduceTopic("orders")), want)
		err := prod.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("x")}).FirstErr()
		if !isTopicDenied(err) {
			t.Fatalf("produce to payments: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		cons := franzClient(t, p, alice, kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("orders-app"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := newSeen()
		for got.count() < len(want) && ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("consume: %v", err)
			}
			fs.EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
		}
		got.check(t, want, false)
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		offsets, err := kadm.NewClient(franzClient(t, p, alice)).FetchOffsets(ctx, "orders-app")
		if err != nil || offsets.Error() != nil {
			t.Fatalf("fetch offsets: %v %v", err, offsets.Error())
		}
		if o, ok := offsets.Lookup("orders", 0); !ok || o.At != int64(len(want)) {
			t.Fatalf("committed offset %+v, want %d", o, len(want))
		}
		other := franzClient(t, p, alice, kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("other-app"))
		for ctx.Err() == nil {
			fs := other.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				if !errors.Is(err, kerr.GroupAuthorizationFailed) {
					t.Fatalf("group other-app: %v, want GROUP_AUTHORIZATION_FAILED", err)
				}
				break
			}
		}
	})

	t.Run("sarama", func(t *testing.T) {
		cfg := saramaSASL(p, config.LocalPlain, sarama.SASLHandshakeV1, "alice", "alice-secret")
		cfg.Producer.Retry.Max = 1
		prod, err := sarama.NewSyncProducer([]string{p.Bootstrap}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "orders", Partition: 0, Value: sarama.StringEncoder("s")}); err != nil {
			t.Fatalf("produce to orders: %v", err)
		}
		_, _, err = prod.SendMessage(&sarama.ProducerMessage{Topic: "payments", Partition: 0, Value: sarama.StringEncoder("s")})
		if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
			t.Fatalf("produce to payments: %v, want %v", err, sarama.ErrTopicAuthorizationFailed)
		}
		cons, err := sarama.NewConsumer([]string{p.Bootstrap}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		if _, err := cons.ConsumePartition("payments", 0, sarama.OffsetOldest); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
			t.Fatalf("consume payments: %v, want %v", err, sarama.ErrTopicAuthorizationFailed)
		}
	})

	t.Run("kafka-go", func(t *testing.T) {
		m := kgplain.Mechanism{Username: "alice", Password: "alice-secret"}
		transport := &kafkago.Transport{Dial: p.DialContext, SASL: m, MetadataTTL: time.Second}
		write := func(topic string) error {
			w := &kafkago.Writer{Addr: kafkago.TCP(p.Bootstrap), Topic: topic, Transport: transport, MaxAttempts: 1,
				Balancer: kafkago.BalancerFunc(func(kafkago.Message, ...int) int { return 0 }), BatchTimeout: 10 * time.Millisecond}
			defer w.Close()
			return w.WriteMessages(ctx, kafkago.Message{Value: []byte("k")})
		}
		if err := write("orders"); err != nil {
			t.Fatalf("produce to orders: %v", err)
		}
		// kafka-go's Writer and Client read a topic they may not describe
		// as unknown (against a broker too); a connection to the
		// partition reports the produce error.
		dialer := &kafkago.Dialer{Timeout: 10 * time.Second, SASLMechanism: m, DialFunc: p.DialContext}
		host, port, _ := net.SplitHostPort(p.Bootstrap)
		portN, _ := strconv.Atoi(port)
		conn, err := dialer.DialPartition(ctx, "tcp", p.Bootstrap, kafkago.Partition{Topic: "payments", ID: 0, Leader: kafkago.Broker{Host: host, Port: portN}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.WriteMessages(kafkago.Message{Value: []byte("k")}); !errors.Is(err, kafkago.TopicAuthorizationFailed) {
			t.Fatalf("produce to payments: %v, want %v", err, kafkago.TopicAuthorizationFailed)
		}
	})
}

// TestACLLiveChange: a changed rule file applies to running clients
// without a restart, by the file watch and by SIGHUP; a broken one keeps
// the rules in force.
func TestACLLiveChange(t *testing.T) {
	for _, via := range []string{"watch", "sighup"} {
		t.Run(via, func(t *testing.T) {
			refresh := 50 * time.Millisecond
			if via == "sighup" {
				refresh = 0
			}
			p, file := aclSASLProxy(t, aclClientRules, refresh)
			ctx := ctxT(t, 60*time.Second)
			cl := franzClient(t, p, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()), kgo.RecordRetries(1))
			produce := func() error {
				return cl.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("x")}).FirstErr()
			}
			if err := produce(); !isTopicDenied(err) {
				t.Fatalf("before the change: %v", err)
			}
			apply := func(rules string) {
				t.Helper()
				if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
					t.Fatal(err)
				}
				ts := time.Now().Add(time.Duration(len(rules)) * time.Second)
				if err := os.Chtimes(file, ts, ts); err != nil {
					t.Fatal(err)
				}
				if via == "sighup" {
					if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
				}
			}
			apply(aclClientRules + "  - principal: User:alice\n    resource: {type: topic, name: payments}\n    operation: Write\n")
			var err error
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if err = produce(); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("after the change: %v", err)
			}
			apply("acls: [\n")
			if !p.Logs.WaitFor(5*time.Second, "acl files not reloaded") {
				t.Fatalf("broken file not logged:\n%s", p.Logs.String())
			}
			if err := produce(); err != nil {
				t.Fatalf("a broken file changed the rules in force: %v", err)
			}
		})
	}
}

// TestACLCertificatePrincipal: an mTLS client named by its certificate
// under the rules of a Strimzi KafkaUser with tls authentication, loaded
// unchanged.
func TestACLCertificatePrincipal(t *testing.T) {
	root, err := certs.NewRoot("proxy test CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("proxy", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := root.IssueClient("", certs.Options{Subject: &pkix.Name{CommonName: "orders-service"}})
	if err != nil {
		t.Fatal(err)
	}
	write := tempWriter(t)
	users := write("kafkausers.yaml", []byte(`apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaUser
metadata:
  name: orders-service
  labels:
    strimzi.io/cluster: my-cluster
spec:
  authentication:
    type: tls
  authorization:
    type: simple
    acls:
      - resource:
          type: topic
          name: orders
          patternType: literal
        operations: [Describe, Write]
        host: "*"
`))
	_, p := setup(t, func(c *config.Config) {
		c.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: write("srv.pem", srv.ChainPEM()), KeyFile: write("srv.key", srv.KeyPEM()),
			CAChainCertFile: write("ca.pem", root.CertPEM())}
		c.ACL.Files = []string{users}
	}, kfake.SeedTopics(1, "orders", "payments"))
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	dial := mtlsDialer(p, pool, client.TLSCertificate())
	ctx := ctxT(t, 30*time.Second)
	cl := franzClient(t, p, dial, kgo.RecordRetries(1))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("o")}).FirstErr(); err != nil {
		t.Fatalf("produce to orders as User:CN=orders-service: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("p")}).FirstErr(); !isTopicDenied(err) {
		t.Fatalf("produce to payments: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// mtlsDialer dials the proxy's TLS listener presenting cert.
func mtlsDialer(p *kafkatest.Proxy, roots *x509.CertPool, cert tls.Certificate) kgo.Opt {
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		raw, err := p.DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return tc, nil
	})
}
