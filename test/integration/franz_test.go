package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

func TestFranzGoProduceConsume(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol string // group protocol: classic or KIP-848 consumer
		mutate   func(*config.Config)
	}{
		{"classic-group", "classic", nil},
		{"kip848-group", "consumer", nil},
		{"dynamic-listeners", "classic", func(c *config.Config) {
			// Only the first broker is mapped: the others are found
			// in Metadata and get dynamic listeners.
			c.Proxy.BootstrapServers = c.Proxy.BootstrapServers[:1]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, p := setup(t, tc.mutate)
			ctx := ctxT(t, 90*time.Second)
			topic := "franz-" + tc.name
			admin := kadm.NewClient(franzClient(t, p))
			if _, err := admin.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatalf("create topic: %v", err)
			}
			want := keyedValues(numRecords)
			prod := franzClient(t, p, kgo.DefaultProduceTopic(topic))
			produceAll(ctx, t, prod, want)

			group := "g-" + tc.name
			opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
			if tc.protocol == "consumer" {
				opts = append(opts, kgo.WithContext(ctx))
				opts = append(opts, groupProtocolConsumer()...)
			}
			cons := franzClient(t, p, opts...)
			got := newSeen()
			for got.count() < numRecords && ctx.Err() == nil {
				fs := cons.PollFetches(ctx)
				fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
				fs.EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
			}
			got.check(t, want, false)
			if tc.mutate != nil && !p.Logs.Contains("dynamic listener started") {
				t.Errorf("no dynamic listener was started for the unmapped brokers")
			}
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Errorf("commit: %v", err)
			}

			// Admin calls through the proxy: end offsets and DescribeCluster.
			ends, err := admin.ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatalf("list offsets: %v", err)
			}
			var total int64
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
			if total != numRecords {
				t.Errorf("end offsets sum to %d, want %d", total, numRecords)
			}
			checkDescribeCluster(ctx, t, franzClient(t, p), p.IsProxyAddr)
			if tc.protocol == "consumer" && requestsOf(t, p, 68) == 0 {
				t.Errorf("no ConsumerGroupHeartbeat (key 68) went through the proxy: the KIP-848 path was not exercised")
			}
		})
	}
}

// produceAll produces want synchronously in batches and fails on any error.
func produceAll(ctx context.Context, t *testing.T, cl *kgo.Client, want map[string]string) {
	t.Helper()
	var recs []*kgo.Record
	for k, v := range want {
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// checkDescribeCluster asks for DescribeCluster at every version the
// broker offers and checks every address is a proxy address.
func checkDescribeCluster(ctx context.Context, t *testing.T, cl *kgo.Client, isProxy func(string) bool) {
	t.Helper()
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = v
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("DescribeCluster v%d: %v", v, err)
		}
		if len(resp.Brokers) != 3 {
			t.Errorf("DescribeCluster v%d: %d brokers, want 3", v, len(resp.Brokers))
		}
		for _, b := range resp.Brokers {
			if addr := fmt.Sprintf("%s:%d", b.Host, b.Port); !isProxy(addr) {
				t.Errorf("DescribeCluster v%d: broker %d at %s is not a proxy address", v, b.NodeID, addr)
			}
		}
	}
}

// TestFranzGoLeaderMove moves partition leaders while producing: clients
// learn the new leader from KIP-951 node endpoints in Produce responses
// (v10+) and from Metadata, both rewritten, so the guard dialer would
// catch any leaked broker address.
func TestFranzGoLeaderMove(t *testing.T) {
	c, p := setup(t, nil)
	ctx := ctxT(t, 120*time.Second)
	topic := "leader-move"
	admin := kadm.NewClient(franzClient(t, p))
	if _, err := admin.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	prod := franzClient(t, p, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := keyedValues(numRecords)
	var recs []*kgo.Record
	for k, v := range want {
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v), Partition: int32(len(recs) % 3)})
	}
	// Ten rounds; before each, every partition's leader moves, so the
	// producer's cached leaders are stale and the brokers answer
	// NOT_LEADER_OR_FOLLOWER with the new leader's endpoint.
	const rounds = 10
	for r := 0; r < rounds; r++ {
		for part := int32(0); part < 3; part++ {
			if err := c.MoveTopicPartition(topic, part, (c.LeaderFor(topic, part)+1)%3); err != nil {
				t.Fatalf("move leader: %v", err)
			}
		}
		batch := recs[r*numRecords/rounds : (r+1)*numRecords/rounds]
		if err := prod.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatalf("produce round %d after leader move: %v", r, err)
		}
	}

	// Consume while leaders keep moving: Fetch v16+ responses then carry
	// KIP-951 node endpoints, which the proxy rewrites while streaming.
	cons := franzClient(t, p, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(4<<10))
	got := newSeen()
	for polls := 0; got.count() < numRecords && ctx.Err() == nil; polls++ {
		if polls%3 == 0 {
			part := int32(polls / 3 % 3)
			if err := c.MoveTopicPartition(topic, part, (c.LeaderFor(topic, part)+1)%3); err != nil {
				t.Fatalf("move leader: %v", err)
			}
		}
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
	}
	// Then, with the consumer caught up and long-polling, move each
	// leader and produce one record there: the poll in flight at the old
	// leader is answered NOT_LEADER_OR_FOLLOWER with the new leader's
	// endpoint, which must arrive rewritten.
	for i := 0; i < 6; i++ {
		part := int32(i % 3)
		if err := c.MoveTopicPartition(topic, part, (c.LeaderFor(topic, part)+1)%3); err != nil {
			t.Fatalf("move leader: %v", err)
		}
		key := fmt.Sprintf("late-%d", i)
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Partition: part}).FirstErr(); err != nil {
			t.Fatalf("produce after move: %v", err)
		}
		// 20 s: a broker may close the long-polling fetch connection in
		// between (kfake does, under load), and the client reconnects.
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		seenLate := false
		for !seenLate && pctx.Err() == nil {
			cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seenLate = seenLate || string(r.Key) == key })
		}
		cancel()
		if !seenLate {
			t.Errorf("record %s produced after a leader move was not consumed", key)
		}
	}
	if n := requestsOfVersion(t, p, 1, 16); n == 0 {
		t.Errorf("no Fetch v16+ went through the proxy: the KIP-951 fetch path was not exercised")
	}
	// kfake answers OffsetForLeaderEpoch with an undefined epoch after a
	// move, which makes clients re-read: duplicates on consume are kfake's,
	// not lost or doubled records (the idempotent producer wrote each once).
	got.check(t, want, true)
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != numRecords+6 {
		t.Errorf("log holds %d records, want exactly %d", total, numRecords+6)
	}
}

// TestFranzGoAcksZero produces fire-and-forget records: the proxy must not
// wait for responses that never come, and must lose none of them. With
// --producer-acks-0-disabled (a performance hint in the proxy we replace,
// which once made this proxy close every acks=0 connection and lose every
// record) the same holds for a larger load, and the start-up log says the
// flag changes nothing, once.
func TestFranzGoAcksZero(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disabled bool
		n        int
	}{{"default", false, numRecords}, {"producer-acks-0-disabled", true, 20 * numRecords}} {
		t.Run(tc.name, func(t *testing.T) { acksZero(t, tc.disabled, tc.n) })
	}
}

func acksZero(t *testing.T, disabledFlag bool, n int) {
	_, p := setup(t, func(c *config.Config) { c.Kafka.MaxOpenRequests = 4; c.Proxy.ProducerAcks0Disabled = disabledFlag })
	ctx := ctxT(t, 90*time.Second)
	topic := "acks-zero"
	admin := kadm.NewClient(franzClient(t, p))
	if _, err := admin.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	want := keyedValues(n)
	prod := franzClient(t, p, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(50))
	produceAll(ctx, t, prod, want)
	// Interleave an acked request on the same connections: it must get
	// its own response, not wait behind phantom acks=0 entries.
	if _, err := kadm.NewClient(prod).ListEndOffsets(ctx, topic); err != nil {
		t.Fatalf("list offsets after acks=0: %v", err)
	}
	prod.Close() // closing right after fire-and-forget must not drop records

	cons := franzClient(t, p, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := newSeen()
	for got.count() < n && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
	}
	got.check(t, want, false)
	notice := strings.Count(p.Logs.String(), "--producer-acks-0-disabled has no effect")
	if disabledFlag && notice != 1 || !disabledFlag && notice != 0 {
		t.Errorf("flag notice logged %d times with the flag %v", notice, disabledFlag)
	}
}

// groupProtocolConsumer opts into KIP-848 consumer groups.
func groupProtocolConsumer() []kgo.Opt {
	return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}
}

// TestUnmappedBrokerWithoutDynamicListeners: with dynamic listeners off, a
// broker missing from the mappings is an error naming it and the flag to
// add; its address never reaches the client.
func TestUnmappedBrokerWithoutDynamicListeners(t *testing.T) {
	c, p := setup(t, func(cfg *config.Config) {
		cfg.Proxy.BootstrapServers = cfg.Proxy.BootstrapServers[:1]
		cfg.Proxy.DynamicListeners.Disable = true
	})
	cl := franzClient(t, p, kgo.RetryTimeout(time.Second))
	ctx, cancel := context.WithTimeout(ctxT(t, 10*time.Second), 2*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(cl).BrokerMetadata(ctx)
	unmapped := c.ListenAddrs()[1]
	if !p.Logs.WaitFor(5*time.Second, "level=ERROR", unmapped, "--bootstrap-server-mapping") {
		t.Errorf("no error naming broker %s and the flag to add:\n%s", unmapped, p.Logs.String())
	}
}
