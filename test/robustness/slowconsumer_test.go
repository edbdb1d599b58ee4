package robustness

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

const (
	slowTopic       = "robust-slow"
	slowFetchBytes  = 8 << 20 // each Fetch response is about this big
	slowPipelined   = 16      // Fetch requests sent at once
	slowReadChunk   = 1 << 10 // the consumer reads 1 KiB ...
	slowReadEvery   = 10 * time.Millisecond
	slowWindow      = 3 * time.Second
	slowSockBuf     = 256 << 10
	slowStreamSlack = 2 << 20 // allowed proxy heap growth when streaming
)

// TestSlowConsumer: a consumer that pipelines Fetch requests for 64 MiB of
// data and reads ~100 KiB/s must not make the proxy buffer what the broker
// sends: the proxy stops reading from the broker (backpressure) and its
// heap stays flat.
//
// The in-process broker builds each response in memory itself, so every
// measurement through the proxy is paired with a control run that reads
// the same way directly from the broker; the proxy's share is the
// difference, as the median of samples over the window. Fetch v12 streams
// through the proxy untouched; Fetch v16+ carries KIP-951 node endpoints
// the proxy rewrites, and must stream too (a proxy that reads such a
// response whole holds one response per slow consumer: 7 MiB here).
func TestSlowConsumer(t *testing.T) {
	c, err := memkafka.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, slowTopic), kfake.SyntheticFetch(kfake.SyntheticBatch{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var fetches atomic.Int64
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		fetches.Add(1)
		return nil, nil, false // observe only
	})
	// Fixed socket buffers (no kernel autotuning) on the proxy's two
	// sockets, so how far the broker gets ahead is deterministic.
	p := kafkatest.StartProxy(t, c.ListenAddrs(), func(c *config.Config) {
		c.Kafka.ConnectionReadBufferSize = slowSockBuf
		c.Proxy.ListenerWriteBufferSize = slowSockBuf
	})
	topicID := topicIDOf(t, c.ListenAddrs()[0], slowTopic)
	maxV := min((&kmsg.FetchRequest{}).MaxVersion(), 18)

	for _, v := range []int16{12, maxV} {
		t.Run(fmt.Sprintf("fetch v%d", v), func(t *testing.T) {
			direct := slowRead(t, c.ListenAddrs()[0], v, topicID, &fetches)
			proxied := slowRead(t, p.Bootstrap, v, topicID, &fetches)
			extra := proxied.growth - direct.growth
			t.Logf("responses of %.1f MiB; direct: heap +%.1f MiB, %d fetches answered, %d KiB read; through proxy: heap +%.1f MiB, %d fetches answered, %d KiB read; proxy's share %.1f MiB",
				mib(proxied.respSize), mib(direct.growth), direct.fetches, direct.read>>10, mib(proxied.growth), proxied.fetches, proxied.read>>10, mib(extra))
			// Backpressure: while the consumer read a fraction of one
			// response, the broker got at most a response or so ahead
			// (what fits in socket buffers), not through the 16 asked.
			if proxied.fetches > direct.fetches+2 {
				t.Errorf("broker answered %d of %d Fetch requests while the consumer read %d KiB: the proxy is reading ahead", proxied.fetches, slowPipelined, proxied.read>>10)
			}
			if proxied.read >= slowFetchBytes {
				t.Fatalf("consumer read %d bytes, not slow relative to a %d byte response: the test measures nothing", proxied.read, slowFetchBytes)
			}
			limit := int64(slowStreamSlack)
			if extra > limit {
				t.Errorf("proxy heap grew %.1f MiB more than the direct read (limit %.1f MiB) with a slow consumer", mib(extra), mib(limit))
			}
		})
	}
}

type slowResult struct {
	growth  int64 // median HeapInuse over the baseline during the window
	fetches int64 // Fetch requests the broker answered
	read    int64 // bytes the consumer read
	// respSize is the first response's size
	respSize int64
}

// slowRead pipelines Fetch requests at addr and reads the answers slowly,
// sampling the heap.
func slowRead(t *testing.T, addr string, version int16, topicID [16]byte, fetches *atomic.Int64) slowResult {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	var frames []byte
	for i := 0; i < slowPipelined; i++ {
		frames = append(frames, fetchFrame(version, topicID, int32(i))...)
	}
	base := stableHeap()
	before := fetches.Load()
	if _, err := conn.Write(frames); err != nil {
		t.Fatal(err)
	}
	var res slowResult
	buf := make([]byte, slowReadChunk)
	var first [4]byte
	deadline := time.Now().Add(slowWindow)
	nextSample := time.Now().Add(400 * time.Millisecond)
	var samples []int64
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if res.read < 4 && n > 0 {
			copy(first[res.read:], buf[:min(n, 4-int(res.read))])
		}
		res.read += int64(n)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", res.read, err)
		}
		if time.Now().After(nextSample) {
			samples = append(samples, heapInuse()-base)
			nextSample = time.Now().Add(400 * time.Millisecond)
		}
		time.Sleep(slowReadEvery)
	}
	// The median: the in-process broker's own buffers come and go as it
	// builds responses; what a proxy holds stays for the whole window.
	slices.Sort(samples)
	res.growth = samples[len(samples)/2]
	res.fetches = fetches.Load() - before
	if res.read < 4 {
		t.Fatal("nothing arrived: no response to be slow about")
	}
	res.respSize = int64(binary.BigEndian.Uint32(first[:]))
	if res.respSize < slowFetchBytes/2 {
		t.Fatalf("first response is %d bytes, want MiBs", res.respSize)
	}
	return res
}

// fetchFrame asks for partition 0 of the slow topic from offset 0.
func fetchFrame(version int16, topicID [16]byte, corr int32) []byte {
	req := kmsg.NewFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = slowFetchBytes
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = slowTopic
	ft.TopicID = topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.FetchOffset = int64(corr) * 1000
	fp.PartitionMaxBytes = slowFetchBytes
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	return requestFrame(&req, corr)
}

// topicIDOf asks the broker directly for a topic's id.
func topicIDOf(t *testing.T, broker, topic string) [16]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata for %s: %v %+v", topic, err, resp)
	}
	return resp.Topics[0].TopicID
}

// stableHeap waits for the heap to stop shrinking (buffers of an earlier
// connection are freed once the broker notices it closed) and returns it.
func stableHeap() int64 {
	prev := heapInuse()
	for i := 0; i < 20; i++ {
		time.Sleep(200 * time.Millisecond)
		h := heapInuse()
		if prev-h < 256<<10 {
			return h
		}
		prev = h
	}
	return prev
}

// heapInuse is HeapInuse after a full collection.
func heapInuse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
