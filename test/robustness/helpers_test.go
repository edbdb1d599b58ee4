// Package robustness checks kafka-proxy under hostile and failing
// conditions with real clients and in-process kfake brokers: malformed
// input, a broker killed mid-produce, a slow consumer, a connection storm,
// SIGTERM under load, and goroutine leaks after Shutdown. Every load loop
// is bounded in count and time: the suite shares a small machine.
package robustness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// setupCluster starts a guarded 3-broker cluster that creates topics
// with 3 partitions on first use.
func setupCluster(t *testing.T, opts ...kfake.Opt) *memkafka.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}, opts...)
	c, err := memkafka.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// setup starts a guarded 3-broker cluster and a proxy in front of it.
func setup(t *testing.T, mutate func(*config.Config), opts ...kfake.Opt) (*memkafka.Cluster, *kafkatest.Proxy) {
	t.Helper()
	c := setupCluster(t, opts...)
	p := kafkatest.StartProxy(t, c.ListenAddrs(), mutate)
	t.Cleanup(func() { p.CheckNoBypass(t) })
	return c, p
}

// proxyClient is a franz-go client that can reach only the proxy.
func proxyClient(t *testing.T, p *kafkatest.Proxy, opts ...kgo.Opt) *kgo.Client {
	return p.Client(t, opts...)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// requestFrame encodes req as a full request frame with client id "robust".
func requestFrame(req kmsg.Request, corr int32) []byte {
	return kafkatest.RequestFrame(req, corr, "robust")
}

func withSize(b []byte) []byte { return kafkatest.WithSize(b) }

func readFrame(r io.Reader) ([]byte, error) { return kafkatest.ReadFrame(r) }

// apiVersionsFrame is a complete ApiVersions v3 request.
func apiVersionsFrame(corr int32) []byte {
	req := kmsg.NewApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "robust", "1"
	return requestFrame(&req, corr)
}

// closedLine is one "connection closed" line of the proxy log.
type closedLine struct {
	level  string
	reason string
}

var (
	reRemote   = regexp.MustCompile(`\bremote=(\S+)`)
	reListener = regexp.MustCompile(`\blistener=(\S+)`)
	reLevel    = regexp.MustCompile(`\blevel=(\S+)`)
	reReason   = regexp.MustCompile(`\breason=("(?:[^"\\]|\\.)*"|\S+)`)
)

// closedByRemote parses the proxy log into its "connection closed" lines
// keyed by client address and listener ("remote>listener"): a client port
// is reused for different listeners, and after TIME_WAIT for the same.
func closedByRemote(log string) map[string][]closedLine {
	out := map[string][]closedLine{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="connection closed`) {
			continue
		}
		m := reRemote.FindStringSubmatch(line)
		ln := reListener.FindStringSubmatch(line)
		if m == nil || ln == nil {
			continue
		}
		var cl closedLine
		if l := reLevel.FindStringSubmatch(line); l != nil {
			cl.level = l[1]
		}
		if r := reReason.FindStringSubmatch(line); r != nil {
			cl.reason = r[1]
			if u, err := strconv.Unquote(r[1]); err == nil {
				cl.reason = u
			}
		} else if i := strings.Index(line, `msg="connection closed: `); i >= 0 {
			cl.reason = line[i:]
		}
		key := m[1] + ">" + ln[1]
		out[key] = append(out[key], cl)
	}
	return out
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// settle polls until cond holds or d passes and reports whether it held.
func settle(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineDump is the stacks of every goroutine, for failure messages.
func goroutineDump() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// summarizeGoroutines groups a goroutine dump by the topmost function in
// this module (else the top frame), to show what leaked.
func summarizeGoroutines(dump string) string {
	counts := map[string]int{}
	for _, g := range strings.Split(dump, "\n\n") {
		key := ""
		for _, l := range strings.Split(g, "\n")[1:] {
			if strings.HasPrefix(l, "\t") {
				continue
			}
			if i := strings.LastIndex(l, "("); i > 0 {
				l = l[:i] // arguments differ per goroutine
			}
			if key == "" {
				key = l
			}
			if strings.Contains(l, "kafka-proxy/internal") {
				key = l
				break
			}
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	var b strings.Builder
	for _, k := range keys[:min(len(keys), 25)] {
		fmt.Fprintf(&b, "%6d %s\n", counts[k], k)
	}
	return b.String()
}

// ledger records what a producer saw acknowledged or failed, by key.
type ledger struct {
	mu     sync.Mutex
	acked  map[string]bool
	failed map[string]error
}

func newLedger() *ledger { return &ledger{acked: map[string]bool{}, failed: map[string]error{}} }

func (l *ledger) record(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[string(r.Key)] = err
		return
	}
	l.acked[string(r.Key)] = true
}

func (l *ledger) counts() (acked, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), len(l.failed)
}

// readAll consumes topic from the start directly from the brokers (the
// oracle, not the proxy) until every partition's end offset is reached and
// counts records per key.
func readAll(t *testing.T, brokers []string, topic string, timeout time.Duration) map[string]int {
	t.Helper()
	ctx := ctxT(t, timeout)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := listEnds(ctx, t, cl, topic)
	var total int64
	for _, e := range ends {
		total += e
	}
	parts := map[int32]kgo.Offset{}
	for p := range ends {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts})
	got := map[string]int{}
	var n int64
	for n < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading back %s: %d of %d records after %v", topic, n, total, timeout)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)]++
			n++
		})
	}
	return got
}

// listEnds returns the end offset of every partition of topic.
func listEnds(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	meta := kmsg.NewMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil || len(mresp.Topics) != 1 {
		t.Fatalf("metadata for %s: %v", topic, err)
	}
	lo := kmsg.NewListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = p.Partition
		lp.Timestamp = -1 // latest
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	ends := map[int32]int64{}
	for _, shard := range cl.RequestSharded(ctx, &lo) {
		if shard.Err != nil {
			t.Fatalf("list offsets: %v", shard.Err)
		}
		for _, rt := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("list offsets %s/%d: error %d", topic, rp.Partition, rp.ErrorCode)
				}
				ends[rp.Partition] = rp.Offset
			}
		}
	}
	if len(ends) != len(mresp.Topics[0].Partitions) {
		t.Fatalf("list offsets answered %d of %d partitions", len(ends), len(mresp.Topics[0].Partitions))
	}
	return ends
}

// checkExactlyOnce fails unless every acknowledged record appears exactly
// once; unacknowledged ones may be absent but never duplicated. If
// strict, a record in the log that was never acknowledged is an error too:
// its request reached the broker but the answer was lost on the way.
func checkExactlyOnce(t *testing.T, l *ledger, got map[string]int, strict bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var missing, dups, unacked []string
	for k := range l.acked {
		switch n := got[k]; {
		case n == 0:
			missing = append(missing, k)
		case n > 1:
			dups = append(dups, fmt.Sprintf("%s×%d", k, n))
		}
	}
	for k, n := range got {
		if l.acked[k] {
			continue
		}
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d (unacked)", k, n))
		}
		unacked = append(unacked, k)
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged records missing from the log, e.g. %v", len(missing), head(missing))
	}
	if len(dups) > 0 {
		t.Errorf("%d records in the log more than once, e.g. %v", len(dups), head(dups))
	}
	if strict && len(unacked) > 0 {
		ex := head(unacked)
		var why []string
		for _, k := range ex {
			why = append(why, fmt.Sprintf("%s: %v", k, l.failed[k]))
		}
		t.Errorf("%d records are in the log but the producer never saw them acknowledged (a response was lost), e.g. %v", len(unacked), why)
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

// bufReader wraps a reader for frame reads.
func bufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

func numGoroutine() int { return runtime.NumGoroutine() }
