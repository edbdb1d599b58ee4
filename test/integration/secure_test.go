package integration

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// secureProxy starts a secured cluster and a proxy that holds its
// credentials; clients speak plaintext to the proxy.
func secureProxy(t *testing.T, mode memkafka.SecurityMode, opts ...memkafka.SecureOption) (*memkafka.SecureCluster, *kafkatest.Proxy) {
	t.Helper()
	opts = append([]memkafka.SecureOption{memkafka.WithKfakeOpts(kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))}, opts...)
	c := kafkatest.StartSecureCluster(t, mode, opts...)
	p := kafkatest.StartProxy(t, c.Addrs, func(cfg *config.Config) {
		cfg.Kafka = c.Kafka
		cfg.Kafka.DialTimeout = 5 * time.Second
	})
	t.Cleanup(func() { p.CheckNoBypass(t) })
	return c, p
}

// TestUpstreamSecurityModes: every upstream security mode, with franz-go,
// sarama and kafka-go speaking plaintext to the proxy.
func TestUpstreamSecurityModes(t *testing.T) {
	const n = 200
	for _, mode := range memkafka.SecurityModes {
		t.Run(mode.String(), func(t *testing.T) {
			c, p := secureProxy(t, mode)
			ctx := ctxT(t, 90*time.Second)
			want := keyedValues(n)

			t.Run("franz-go", func(t *testing.T) {
				topic := "franz-" + strings.ToLower(mode.String())
				if _, err := kadm.NewClient(franzClient(t, p)).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
					t.Fatalf("create topic: %v", err)
				}
				produceAll(ctx, t, franzClient(t, p, kgo.DefaultProduceTopic(topic)), want)
				cons := franzClient(t, p, kgo.ConsumeTopics(topic), kgo.ConsumerGroup("g-"+topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				got := newSeen()
				for got.count() < n && ctx.Err() == nil {
					cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
				}
				got.check(t, want, false)
			})
			t.Run("sarama", func(t *testing.T) {
				topic := "sarama-" + strings.ToLower(mode.String())
				cfg := saramaConfig(p)
				prod, err := sarama.NewSyncProducer([]string{p.Bootstrap}, cfg)
				if err != nil {
					t.Fatalf("producer: %v", err)
				}
				var msgs []*sarama.ProducerMessage
				for k, v := range want {
					msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(v)})
				}
				if err := prod.SendMessages(msgs); err != nil {
					t.Fatalf("produce: %v", err)
				}
				prod.Close()
				cons, err := sarama.NewConsumer([]string{p.Bootstrap}, cfg)
				if err != nil {
					t.Fatalf("consumer: %v", err)
				}
				defer cons.Close()
				got := newSeen()
				parts, err := cons.Partitions(topic)
				if err != nil {
					t.Fatal(err)
				}
				for _, part := range parts {
					pc, err := cons.ConsumePartition(topic, part, sarama.OffsetOldest)
					if err != nil {
						t.Fatal(err)
					}
					defer pc.Close()
					go func() {
						for m := range pc.Messages() {
							got.add(string(m.Key), string(m.Value))
						}
					}()
				}
				for got.count() < n && ctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
				}
				got.check(t, want, false)
			})
			t.Run("kafka-go", func(t *testing.T) {
				topic := "kafkago-" + strings.ToLower(mode.String())
				transport := &kafka.Transport{Dial: p.DialContext}
				w := &kafka.Writer{Addr: kafka.TCP(p.Bootstrap), Topic: topic, Transport: transport, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: true, BatchTimeout: 5 * time.Millisecond}
				var msgs []kafka.Message
				for k, v := range want {
					msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(v)})
				}
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					t.Fatalf("produce: %v", err)
				}
				w.Close()
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{p.Bootstrap}, GroupID: "g-" + topic, Topic: topic, StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
					Dialer: &kafka.Dialer{Timeout: 10 * time.Second, DialFunc: func(ctx context.Context, network, addr string) (net.Conn, error) {
						return p.DialContext(ctx, network, addr)
					}}})
				defer r.Close()
				got := newSeen()
				for got.count() < n {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						t.Fatalf("consume after %d: %v", got.count(), err)
					}
					got.add(string(m.Key), string(m.Value))
				}
				got.check(t, want, false)
			})
			if s := c.Stats(); s.Authenticated == 0 && mode != memkafka.TLSOnly && mode != memkafka.MTLS {
				t.Errorf("front saw no SASL authentication: %+v", s)
			}
		})
	}
}

// TestReauthenticationThroughProxy: with a 3-second broker session, below
// the default --kafka-reauth-min-lifetime (5 s), a producer and a consumer
// stay connected through at least five expiries: no client-visible error,
// no disconnect, no expired-session close at the broker, every record
// delivered once. (The floor once closed every such connection at once.)
func TestReauthenticationThroughProxy(t *testing.T) {
	for _, mode := range []memkafka.SecurityMode{memkafka.SCRAM512TLS, memkafka.OAuthJWTFile} {
		t.Run(mode.String(), func(t *testing.T) {
			const lifetime = 3 * time.Second
			// The front enforces expiry as Apache Kafka does: a request
			// other than re-authentication on an expired session closes
			// the connection. (A renewal may legitimately finish after
			// the deadline when it waits behind a client's long-poll
			// Fetch; the broker reads it only then, and accepts it.)
			c, p := secureProxy(t, mode, memkafka.WithSessionLifetime(lifetime))
			if floor := p.Config.Kafka.ReauthMinLifetime; floor != config.Default().Kafka.ReauthMinLifetime || floor <= lifetime {
				t.Fatalf("reauth floor %v: want the default, above the %v session", floor, lifetime)
			}
			ctx := ctxT(t, 90*time.Second)
			topic := "reauth"
			var disconnects atomic.Int64
			hooks := kgo.WithHooks(disconnectCounter{&disconnects})
			if _, err := kadm.NewClient(franzClient(t, p)).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatalf("create topic: %v", err)
			}
			prod := franzClient(t, p, kgo.DefaultProduceTopic(topic), hooks, kgo.ConnIdleTimeout(time.Minute))
			cons := franzClient(t, p, kgo.ConsumeTopics(topic), kgo.ConsumerGroup("reauth-group"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), hooks, kgo.ConnIdleTimeout(time.Minute))

			want := keyedValues(numRecords)
			got := newSeen()
			var fetchErrs atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for got.count() < numRecords && ctx.Err() == nil {
					fs := cons.PollFetches(ctx)
					fs.EachError(func(tp string, part int32, err error) {
						if ctx.Err() == nil {
							fetchErrs.Add(1)
							t.Errorf("consumer error %s/%d: %v", tp, part, err)
						}
					})
					fs.EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
				}
			}()
			// Pace the producer over > 5 session lifetimes.
			run := 5*lifetime + lifetime/2
			per := run / numRecords
			start := time.Now()
			i := 0
			for k, v := range want {
				if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatalf("produce record %d after %v: %v", i, time.Since(start), err)
				}
				i++
				if d := time.Until(start.Add(time.Duration(i) * per)); d > 0 {
					time.Sleep(d)
				}
			}
			wg.Wait()
			got.check(t, want, false)
			s := c.Stats()
			t.Logf("after %v: front stats %+v, client disconnects %d", time.Since(start).Round(time.Millisecond), s, disconnects.Load())
			if s.ExpiredClosed != 0 {
				t.Errorf("%d connections were closed by the broker for an expired session", s.ExpiredClosed)
			}
			if s.Reauthenticated < 5 {
				t.Errorf("%d re-authentications, want at least 5", s.Reauthenticated)
			}
			if d := disconnects.Load(); d != 0 {
				t.Errorf("clients saw %d disconnects", d)
			}
		})
	}
}

// disconnectCounter counts broker disconnects a franz-go client sees.
type disconnectCounter struct{ n *atomic.Int64 }

func (d disconnectCounter) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { d.n.Add(1) }

// TestPlaintextToTLSBroker: without --tls-enable, a TLS-only broker hangs
// up on the proxy's first request. The log says the broker may require
// TLS and names the flag, on the splice path (no SASL: the client's own
// first request) and on the dial path (SASL: the proxy's ApiVersions), and
// the proxy keeps serving.
func TestPlaintextToTLSBroker(t *testing.T) {
	for _, mode := range []memkafka.SecurityMode{memkafka.TLSOnly, memkafka.SASLPlainTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			c := kafkatest.StartSecureCluster(t, mode, memkafka.WithBrokers(1))
			p := kafkatest.StartProxy(t, c.Addrs, func(cfg *config.Config) {
				cfg.Kafka.SASL = c.Kafka.SASL // the TLS settings left out, as by mistake
			})
			for range 2 {
				ctx := ctxT(t, 10*time.Second)
				cl := franzClient(t, p, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
				if err := cl.Ping(ctx); err == nil {
					t.Fatal("a plaintext proxy reached a TLS-only broker")
				}
				cl.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(p.Logs.String(), "may require TLS: set --tls-enable") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(p.Logs.String(), "may require TLS: set --tls-enable") {
				t.Fatalf("no TLS hint in the log:\n%s", p.Logs.String())
			}
		})
	}
}
