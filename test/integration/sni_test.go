package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// sniPort is the port of the load balancer the SNI tests pretend is in
// front of the proxies; nothing listens on it.
const sniPort = "9443"

// balancer stands for DNS plus a TCP load balancer on sniPort in front of
// several proxies' SNI listeners: it resolves only *.kafka.test names at
// sniPort, sends the bootstrap name to the first proxy and each other
// connection to the next proxy in turn, and refuses every other address,
// so a broker address that leaked to a client fails the test.
type balancer struct {
	proxies []string // the SNI listeners
	next    atomic.Uint64
	mu      sync.Mutex
	refused []string
	dialled map[string]int // host name -> connections
}

func (b *balancer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != sniPort || !strings.HasSuffix(host, ".kafka.test") {
		b.mu.Lock()
		b.refused = append(b.refused, addr)
		b.mu.Unlock()
		return nil, fmt.Errorf("balancer: refusing %s: not a name at the balancer's port", addr)
	}
	target := b.proxies[0]
	if host != "bootstrap.kafka.test" {
		target = b.proxies[int(b.next.Add(1))%len(b.proxies)]
	}
	b.mu.Lock()
	b.dialled[host]++
	b.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

func (b *balancer) Dial(network, addr string) (net.Conn, error) {
	return b.DialContext(context.Background(), network, addr)
}

func (b *balancer) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.refused) > 0 {
		t.Errorf("clients tried addresses that are not SNI names at the balancer: %v", b.refused)
	}
}

// sniCluster starts a 3-broker cluster and two proxies that route by SNI
// behind one balancer, with a wildcard certificate for *.kafka.test.
func sniCluster(t *testing.T) (*balancer, *x509.CertPool, []*kafkatest.Proxy) {
	t.Helper()
	root, err := certs.NewRoot("sni test CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("kafka.test", []string{"*.kafka.test"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	write := tempWriter(t)
	certFile, keyFile := write("srv.pem", srv.ChainPEM()), write("srv.key", srv.KeyPEM())
	c, err := memkafka.NewCluster(kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := &balancer{dialled: map[string]int{}}
	var proxies []*kafkatest.Proxy
	for range 2 {
		p := kafkatest.StartProxy(t, c.ListenAddrs(), func(cfg *config.Config) {
			cfg.Proxy.TLS = config.ListenerTLS{Enable: true, CertFile: certFile, KeyFile: keyFile}
			cfg.Proxy.SNI = config.SNI{ListenAddress: "127.0.0.1:0", BootstrapHost: "bootstrap.kafka.test",
				BrokerHostPattern: "broker-$(nodeId).kafka.test", AdvertisedPort: 9443}
		})
		proxies = append(proxies, p)
		for _, l := range p.Server.Listeners() {
			if l.Upstream == "" {
				b.proxies = append(b.proxies, l.Addr.String())
			}
		}
	}
	if len(b.proxies) != 2 {
		t.Fatalf("SNI listeners: %v", b.proxies)
	}
	t.Cleanup(func() { b.check(t) })
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	return b, pool, proxies
}

// tlsVia dials through the balancer and verifies the proxy's certificate
// for the name dialled, sending it as SNI.
func tlsVia(b *balancer, pool *x509.CertPool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := b.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return tc, nil
	}
}

// TestSNIRouting: one port serves the bootstrap name and every broker.
// Metadata advertises broker-N.kafka.test at the balancer's port for each
// broker; franz-go, sarama and kafka-go produce and consume through two
// proxies behind one balancer, so the second proxy routes broker names it
// never advertised itself (it asks the cluster). Unknown names, names of
// brokers the cluster does not have and connections without SNI are
// refused, each with a log line naming why.
func TestSNIRouting(t *testing.T) {
	b, pool, proxies := sniCluster(t)
	ctx := ctxT(t, 120*time.Second)
	bootstrap := "bootstrap.kafka.test:" + sniPort
	dial := tlsVia(b, pool)

	franz, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.Dialer(dial), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("sni-franz"))
	if err != nil {
		t.Fatal(err)
	}
	defer franz.Close()
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, franz)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Brokers) != 3 {
		t.Fatalf("metadata lists %d brokers, want 3", len(meta.Brokers))
	}
	for _, br := range meta.Brokers {
		if want := fmt.Sprintf("broker-%d.kafka.test", br.NodeID); br.Host != want || br.Port != 9443 {
			t.Errorf("broker %d advertised as %s:%d, want %s:9443", br.NodeID, br.Host, br.Port, want)
		}
	}
	want := keyedValues(300)
	produceAll(ctx, t, franz, want)
	cons, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.Dialer(dial), kgo.ConsumeTopics("sni-franz"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := newSeen()
	for got.count() < len(want) && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
	}
	got.check(t, want, false)

	t.Run("sarama", func(t *testing.T) {
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V3_6_0_0
		cfg.Net.Proxy.Enable, cfg.Net.Proxy.Dialer = true, b
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		cfg.Producer.Return.Successes, cfg.Producer.RequiredAcks = true, sarama.WaitForAll
		cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
		prod, err := sarama.NewSyncProducer([]string{bootstrap}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		for i := range 30 {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "sni-franz", Key: sarama.StringEncoder(fmt.Sprintf("s-%d", i)), Value: sarama.StringEncoder("sarama")}); err != nil {
				t.Fatalf("sarama produce: %v", err)
			}
		}
		client, err := sarama.NewClient([]string{bootstrap}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		for _, br := range client.Brokers() {
			if !strings.HasSuffix(br.Addr(), ".kafka.test:"+sniPort) {
				t.Errorf("sarama learnt broker %d at %s", br.ID(), br.Addr())
			}
		}
	})

	t.Run("kafka-go", func(t *testing.T) {
		transport := &kafka.Transport{Dial: b.DialContext, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MetadataTTL: time.Second}
		w := &kafka.Writer{Addr: kafka.TCP(bootstrap), Topic: "sni-franz", Transport: transport, RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
		defer w.Close()
		msgs := make([]kafka.Message, 30)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("g-%d", i)), Value: []byte("kafka-go")}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("kafka-go produce: %v", err)
		}
	})

	// Every broker answers through its name (the topics' leaders need not
	// cover all three), and the second proxy served some of them without
	// having answered a Metadata request itself.
	for id := range 3 {
		if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, franz.Broker(id)); err != nil {
			t.Errorf("ApiVersions to broker %d through its SNI name: %v", id, err)
		}
	}
	b.mu.Lock()
	for id := range 3 {
		if n := b.dialled[fmt.Sprintf("broker-%d.kafka.test", id)]; n == 0 {
			t.Errorf("no client dialled broker-%d.kafka.test: %v", id, b.dialled)
		}
	}
	b.mu.Unlock()
	routed := proxies[1].MetricSum(t, "proxy_connections_total", func(l map[string]string) bool { return l["broker"] != "sni" })
	if routed == 0 {
		t.Errorf("the second proxy routed no connection to a broker")
	}

	refused := func(name, logPart string) {
		t.Helper()
		raw, err := net.Dial("tcp", b.proxies[0])
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		cfg := &tls.Config{RootCAs: pool, ServerName: name, InsecureSkipVerify: name == "", MinVersion: tls.VersionTLS12}
		tc := tls.Client(raw, cfg)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err == nil {
			// TLS completes; the routing refusal closes the connection
			// before a single Kafka byte is forwarded.
			_, _ = tc.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0}) // ApiVersions v0
			if n, err := tc.Read(make([]byte, 16)); err == nil || n > 0 {
				t.Errorf("SNI name %q: connection served", name)
			}
		}
		if !proxies[0].Logs.WaitFor(5*time.Second, "connection closed", logPart) {
			t.Errorf("SNI name %q: refusal not logged as %q:\n%s", name, logPart, proxies[0].Logs.String())
		}
	}
	refused("nope.kafka.test", `unknown SNI name \"nope.kafka.test\"`)
	refused("broker-7.kafka.test", "does not list broker 7")
	refused("", "sent no SNI name")
	// The refusal is logged just before the connection is counted closed.
	refusedSNI := func() float64 {
		return proxies[0].MetricSum(t, "proxy_connections_closed_total", func(l map[string]string) bool { return l["broker"] == "sni" && l["reason"] == "refused" })
	}
	for deadline := time.Now().Add(5 * time.Second); refusedSNI() < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := refusedSNI(); n != 3 {
		t.Errorf("refused SNI connections counted %v times, want 3", n)
	}
}
