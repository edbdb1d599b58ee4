package integration

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestKafkaGoProduceConsume(t *testing.T) {
	_, p := setup(t, nil)
	ctx := ctxT(t, 120*time.Second)
	topic := "kafkago-topic"
	transport := &kafka.Transport{Dial: p.DialContext, MetadataTTL: time.Second}
	client := &kafka.Client{Addr: kafka.TCP(p.Bootstrap), Transport: transport}

	created, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := created.Errors[topic]; err != nil {
		t.Fatalf("create topic: %v", err)
	}

	w := &kafka.Writer{Addr: kafka.TCP(p.Bootstrap), Topic: topic, Transport: transport, RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond}
	want := keyedValues(numRecords)
	var msgs []kafka.Message
	for k, v := range want {
		msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(v)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("writer close: %v", err)
	}

	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)}}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	var total int64
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets partition %d: %v", po.Partition, po.Error)
		}
		total += po.LastOffset
	}
	if total != numRecords {
		t.Errorf("end offsets sum to %d, want %d", total, numRecords)
	}

	// The consumer group's coordinator address comes from FindCoordinator,
	// rewritten by the proxy; kafka-go's Dialer refuses anything else.
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, DialFunc: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return p.DialContext(ctx, network, addr)
	}}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        []string{p.Bootstrap},
		GroupID:        "kafkago-group",
		Topic:          topic,
		Dialer:         dialer,
		StartOffset:    kafka.FirstOffset,
		MaxWait:        200 * time.Millisecond,
		CommitInterval: 100 * time.Millisecond,
	})
	defer r.Close()
	got := newSeen()
	for got.count() < numRecords {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("consume after %d records: %v", got.count(), err)
		}
		got.add(string(m.Key), string(m.Value))
	}
	got.check(t, want, false)

	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, b := range meta.Brokers {
		if addr := net.JoinHostPort(b.Host, strconv.Itoa(b.Port)); !p.IsProxyAddr(addr) {
			t.Errorf("metadata broker %d at %s is not a proxy address", b.ID, addr)
		}
	}
}
