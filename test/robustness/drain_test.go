package robustness

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// TestShutdownMidRequest: Shutdown arrives while one request is in flight
// at the broker (a long-polling Fetch) and the next (a Produce) is half
// received. Both must be answered, in order, before the connection closes:
// the Fetch was sent, and the Produce's first bytes already reached the
// broker. Shutdown must return without hitting its drain timeout, and the
// produced records must be in the log.
func TestShutdownMidRequest(t *testing.T) {
	const topic = "robust-drain"
	c, err := memkafka.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p := kafkatest.StartProxy(t, c.ListenAddrs(), nil)
	conn, err := net.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()

	// A: Fetch v12 on the empty partition, held by the broker ~1.5 s.
	fetch := kmsg.NewFetchRequest()
	fetch.Version = 12
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 1500
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	// B: Produce v9 acks=all of 20 records, ~10 KiB: larger than the
	// proxy's request buffer, so it is relayed in pieces.
	const records = 20
	produce := kmsg.NewProduceRequest()
	produce.Version = 9
	produce.Acks = -1
	produce.TimeoutMillis = 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = recordBatch("drain", records, 500)
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	b := requestFrame(&produce, 2)

	if _, err := conn.Write(requestFrame(&fetch, 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // A is at the broker
	half := len(b) / 2
	if _, err := conn.Write(b[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the proxy is inside B
	shut := make(chan error, 1)
	shutAt := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- p.Server.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond) // the drain has begun
	if _, err := conn.Write(b[half:]); err != nil {
		t.Fatalf("rest of the Produce request: %v", err)
	}

	r := bufReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []int32{1, 2} {
		f, err := readFrame(r)
		if err != nil {
			t.Fatalf("response %d lost at shutdown: %v", want, err)
		}
		if corr := int32(binary.BigEndian.Uint32(f)); corr != want {
			t.Fatalf("got response %d, want %d", corr, want)
		}
		if want == 2 {
			resp := kmsg.NewProduceResponse()
			resp.Version = 9
			if err := resp.ReadFrom(f[5:]); err != nil {
				t.Fatalf("produce response: %v", err)
			}
			if ec := resp.Topics[0].Partitions[0].ErrorCode; ec != 0 {
				t.Fatalf("produce answered error %d", ec)
			}
		}
	}
	if _, err := readFrame(r); err == nil {
		t.Errorf("connection still open after the drain")
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not return")
	}
	t.Logf("shutdown took %v", time.Since(shutAt).Round(time.Millisecond))
	for _, l := range closedByRemote(p.Logs.String())[local+">"+p.Bootstrap] {
		if l.level != "DEBUG" {
			t.Errorf("drained connection logged as a failure: %s %s", l.level, l.reason)
		}
	}
	got := readAll(t, c.ListenAddrs(), topic, 20*time.Second)
	for i := 0; i < records; i++ {
		if k := fmt.Sprintf("drain-%d", i); got[k] != 1 {
			t.Errorf("record %s in the log %d times, want 1", k, got[k])
		}
	}
}

// recordBatch builds a v2 record batch of n records keyed prefix-i with
// values of size bytes.
func recordBatch(prefix string, n, size int) []byte {
	var recs []byte
	value := []byte(strings.Repeat("v", size))
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Key: fmt.Appendf(nil, "%s-%d", prefix, i), Value: value}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = append(recs, r.AppendTo(nil)...)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(n),
		Records:              recs,
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestShutdownNotHeldByStalledRequest: clients that sent part of a request
// and then stall (nothing of it forwarded yet, so the broker owes them
// nothing) must not hold a graceful shutdown until the drain timeout.
func TestShutdownNotHeldByStalledRequest(t *testing.T) {
	_, p := setup(t, nil)
	av := apiVersionsFrame(3)
	idle := dialT(t, p.Bootstrap)
	header := dialT(t, p.Bootstrap)
	body := dialT(t, p.Bootstrap)
	if _, err := header.Write(av[:7]); err != nil { // size and 3 header bytes
		t.Fatal(err)
	}
	if _, err := body.Write(av[:len(av)-5]); err != nil { // all but the last bytes
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := p.Server.Shutdown(ctx)
	took := time.Since(start)
	t.Logf("shutdown took %v", took.Round(time.Millisecond))
	if err != nil || took > 3*time.Second {
		t.Errorf("shutdown took %v (%v): stalled half requests held the drain", took.Round(time.Millisecond), err)
	}
	for _, c := range []net.Conn{idle, header, body} {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(make([]byte, 64)); err == nil {
			t.Errorf("connection answered %d bytes after shutdown", n)
		}
	}
}
