package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// saramaConfig returns a sarama config whose connections can only reach
// the proxy.
func saramaConfig(p *kafkatest.Proxy) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "sarama-it"
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = p // its Dial refuses non-proxy addresses
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func TestSaramaProduceConsume(t *testing.T) {
	_, p := setup(t, nil)
	ctx := ctxT(t, 120*time.Second)
	cfg := saramaConfig(p)
	topic := "sarama-topic"

	admin, err := sarama.NewClusterAdmin([]string{p.Bootstrap}, cfg)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	brokers, _, err := admin.DescribeCluster()
	if err != nil {
		t.Fatalf("describe cluster: %v", err)
	}
	if len(brokers) != 3 {
		t.Errorf("DescribeCluster: %d brokers, want 3", len(brokers))
	}
	for _, b := range brokers {
		if !p.IsProxyAddr(b.Addr()) {
			t.Errorf("DescribeCluster: broker %d at %s is not a proxy address", b.ID(), b.Addr())
		}
	}

	prod, err := sarama.NewSyncProducer([]string{p.Bootstrap}, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	want := keyedValues(numRecords)
	var msgs []*sarama.ProducerMessage
	for k, v := range want {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(v)})
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := prod.Close(); err != nil {
		t.Fatalf("producer close: %v", err)
	}

	client, err := sarama.NewClient([]string{p.Bootstrap}, cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	var total int64
	for part := int32(0); part < 3; part++ {
		off, err := client.GetOffset(topic, part, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("list offsets: %v", err)
		}
		total += off
	}
	if total != numRecords {
		t.Errorf("end offsets sum to %d, want %d", total, numRecords)
	}

	group, err := sarama.NewConsumerGroup([]string{p.Bootstrap}, "sarama-group", cfg)
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	defer group.Close()
	got := newSeen()
	h := &saramaHandler{seen: got, done: make(chan struct{}), want: numRecords}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := group.Consume(cctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case err := <-errc:
		t.Fatalf("consume: %v", err)
	case <-ctx.Done():
		t.Fatalf("consume timed out with %d of %d records", got.count(), numRecords)
	}
	cancel()
	<-errc
	got.check(t, want, false)
}

// saramaHandler collects records until want have been seen.
type saramaHandler struct {
	seen *seen
	want int
	done chan struct{}
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.seen.add(string(m.Key), string(m.Value))
		s.MarkMessage(m, "")
		if h.seen.count() == h.want {
			select {
			case <-h.done:
			default:
				close(h.done)
			}
		}
	}
	return nil
}
