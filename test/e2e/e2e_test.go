// Package e2e runs real, independently written Kafka clients (kcat,
// confluent-kafka-python, kafka-python, kafkajs) through `kafka-proxy demo`.
// Each client runs inside a network namespace that can reach only the proxy's
// listeners, so a client that follows a leaked broker address fails instead of
// silently bypassing the proxy. See README.md.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// records returns the input kcat produces: "k-i:v-i" lines.
func records(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "k-%d:v-%d\n", i, i)
	}
	return b.String()
}

// tally checks "key:value" lines against the n expected records.
type tally struct {
	n    int
	seen map[string]bool
	bad  []string
}

func newTally(n int) *tally { return &tally{n: n, seen: make(map[string]bool, n)} }

func (t *tally) add(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	k, v, ok := strings.Cut(line, ":")
	if !ok || !strings.HasPrefix(v, "v-") || k != "k-"+strings.TrimPrefix(v, "v-") {
		t.bad = append(t.bad, line)
		return
	}
	t.seen[v] = true
}

func (t *tally) complete() bool { return len(t.seen) >= t.n && t.check() == nil }

func (t *tally) check() error {
	if len(t.bad) > 0 {
		return fmt.Errorf("%d malformed or mismatched records, first: %q", len(t.bad), t.bad[0])
	}
	var missing []string
	for i := 0; i < t.n; i++ {
		if v := fmt.Sprintf("v-%d", i); !t.seen[v] {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		if len(missing) > 5 {
			missing = append(missing[:5], "...")
		}
		return fmt.Errorf("got %d/%d distinct values; missing %v", t.n-len(missing), t.n, missing)
	}
	return nil
}

func clientCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestNetnsIsolation proves the premise of the suite: from inside the
// namespace the proxy is reachable and a 127.0.0.1 listener in the root
// namespace (where the demo's brokers listen) is not.
func TestNetnsIsolation(t *testing.T) {
	bash, err := exec.LookPath("bash")
	requireTool(t, "bash", err)
	s := env(t)
	if s.ns == nil {
		t.Skip("no network namespace: " + s.warning)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func(addr string) result {
		host, port, _ := net.SplitHostPort(addr)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return s.run(ctx, "", bash, "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port))
	}
	if r := dial(s.bootstrap); r.err != nil {
		t.Fatalf("proxy %s not reachable from namespace %s:\n%s", s.bootstrap, s.ns.name, r)
	}
	if r := dial(l.Addr().String()); r.err == nil {
		t.Fatalf("root-namespace loopback %s reachable from namespace %s: clients could bypass the proxy", l.Addr(), s.ns.name)
	}
	// The demo's brokers themselves, when it prints their addresses.
	for _, b := range s.demo.brokers {
		if r := dial(b); r.err == nil {
			t.Errorf("broker %s reachable from namespace %s: clients could bypass the proxy", b, s.ns.name)
		}
	}
	t.Logf("namespace %s reaches the proxy at %s but not root loopback nor brokers %v", s.ns.name, s.bootstrap, s.demo.brokers)
}

func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	requireTool(t, "kcat", err)
	s := env(t)
	const topic, group = "e2e-kcat", "e2e-kcat-group"

	// Metadata for the seeded topic must name only the proxy's listeners.
	t.Run("metadata", func(t *testing.T) {
		r := s.run(clientCtx(t), "", kcat, "-L", "-b", s.bootstrap, "-t", "demo", "-J", "-m", "30")
		if r.err != nil {
			t.Fatalf("kcat -L failed:\n%s", r)
		}
		var md struct {
			Brokers []struct {
				ID   int32  `json:"id"`
				Name string `json:"name"`
			} `json:"brokers"`
			Topics []struct {
				Topic      string            `json:"topic"`
				Error      string            `json:"error"`
				Partitions []json.RawMessage `json:"partitions"`
			} `json:"topics"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &md); err != nil {
			t.Fatalf("kcat -L -J output: %v\n%s", err, r)
		}
		want := map[string]bool{}
		for i := 0; i < 3; i++ {
			want[net.JoinHostPort(s.listenIP, strconv.Itoa(s.basePort+i))] = true
		}
		var got []string
		for _, b := range md.Brokers {
			got = append(got, b.Name)
			if !want[b.Name] {
				t.Errorf("metadata advertises broker %d at %s, not a proxy listener (want one of %v)", b.ID, b.Name, keys(want))
			}
		}
		if len(md.Brokers) != 3 {
			t.Errorf("metadata lists %d brokers %v, want 3", len(md.Brokers), got)
		}
		if len(md.Topics) != 1 || md.Topics[0].Topic != "demo" || md.Topics[0].Error != "" || len(md.Topics[0].Partitions) != 3 {
			t.Errorf("want seeded topic demo with 3 partitions, got:\n%s", r.stdout)
		}
	})

	ok := t.Run("produce", func(t *testing.T) {
		r := s.run(clientCtx(t), records(recordsPerTest), kcat, "-P", "-b", s.bootstrap, "-t", topic, "-K:",
			"-X", "acks=all", "-X", "message.timeout.ms=60000")
		if r.err != nil {
			t.Fatalf("kcat produce failed:\n%s", r)
		}
	})
	if !ok {
		t.FailNow()
	}

	// Simple consumer: Metadata, ListOffsets and Fetch straight to each leader.
	t.Run("consume", func(t *testing.T) {
		r := s.run(clientCtx(t), "", kcat, "-C", "-b", s.bootstrap, "-t", topic, "-e", "-o", "beginning",
			"-q", "-f", `%k:%s\n`)
		if r.err != nil {
			t.Fatalf("kcat consume failed:\n%s", r)
		}
		tl := newTally(recordsPerTest)
		for _, line := range strings.Split(r.stdout, "\n") {
			tl.add(line)
		}
		if err := tl.check(); err != nil {
			t.Fatalf("kcat consume: %v\n%s", err, r)
		}
		t.Logf("kcat consumed %d records", len(tl.seen))
	})

	// Balanced consumer: FindCoordinator, JoinGroup/SyncGroup, OffsetFetch,
	// heartbeats. It runs until stopped, so stop it once everything arrived.
	t.Run("consume-group", func(t *testing.T) {
		tl := newTally(recordsPerTest)
		r, done := s.runUntil(clientCtx(t), func(line string) bool { tl.add(line); return tl.complete() },
			kcat, "-b", s.bootstrap, "-G", group, "-o", "beginning", "-u", "-q", "-f", `%k:%s\n`, topic)
		if !done {
			t.Fatalf("kcat -G did not deliver every record: %v\n%s", tl.check(), r)
		}
		if err := tl.check(); err != nil {
			t.Fatalf("kcat -G: %v\n%s", err, r)
		}
		t.Logf("kcat -G consumed %d records", len(tl.seen))
	})
}

// TestKcatLargeRecords sends records close to the broker's 1 MB limit, so
// Produce requests and Fetch responses of several MB cross the proxy.
func TestKcatLargeRecords(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	requireTool(t, "kcat", err)
	s := env(t)
	const topic, n, size = "e2e-kcat-large", 20, 900_000
	var in strings.Builder
	want := map[string]int{}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("v-%d-", i) + strings.Repeat("x", size)
		fmt.Fprintf(&in, "k-%d:%s\n", i, v)
		want[fmt.Sprintf("k-%d", i)] = len(v)
	}
	r := s.run(clientCtx(t), in.String(), kcat, "-P", "-b", s.bootstrap, "-t", topic, "-K:", "-X", "acks=all")
	if r.err != nil {
		t.Fatalf("kcat produce failed:\n%s", r)
	}
	// %S is the value's size: compare sizes, not megabytes of output.
	r = s.run(clientCtx(t), "", kcat, "-C", "-b", s.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q", "-f", `%k:%S\n`)
	if r.err != nil {
		t.Fatalf("kcat consume failed:\n%s", r)
	}
	got := map[string]int{}
	for _, line := range strings.Fields(r.stdout) {
		k, v, _ := strings.Cut(line, ":")
		got[k], _ = strconv.Atoi(v)
	}
	for k, size := range want {
		if got[k] != size {
			t.Errorf("record %s: got value size %d, want %d", k, got[k], size)
		}
	}
	if len(got) != n {
		t.Errorf("consumed %d distinct keys, want %d:\n%s", len(got), n, r)
	}
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// runClientProgram runs one of clients/* and requires exit 0 and its OK line.
func runClientProgram(t *testing.T, s *suite, name string, argv ...string) {
	t.Helper()
	topic, group := "e2e-"+name, "e2e-"+name+"-group"
	argv = append(argv, s.bootstrap, topic, strconv.Itoa(recordsPerTest), group)
	start := time.Now()
	r := s.run(clientCtx(t), "", argv...)
	if r.err != nil {
		t.Fatalf("%s client failed after %s:\n%s", name, time.Since(start).Round(time.Millisecond), r)
	}
	if !strings.Contains(r.stdout, ": OK ") {
		t.Fatalf("%s client exited 0 without its OK summary line:\n%s", name, r)
	}
	t.Log(strings.TrimSpace(lastLine(r.stdout)))
}

func TestConfluentKafkaPython(t *testing.T) {
	requireTool(t, "confluent-kafka-python (python3-confluent-kafka)", probe("", systemPython, "-c", "import confluent_kafka"))
	s := env(t)
	runClientProgram(t, s, "confluent", systemPython, filepath.Join(s.dir, "clients", "confluent_client.py"))
}

func TestKafkaPython(t *testing.T) {
	requireTool(t, "kafka-python (python3-kafka)", probe("", systemPython, "-c", "import kafka"))
	s := env(t)
	runClientProgram(t, s, "kafkapython", systemPython, filepath.Join(s.dir, "clients", "kafkapython_client.py"))
}

func TestKafkaJS(t *testing.T) {
	node, err := exec.LookPath("node")
	requireTool(t, "node", err)
	requireTool(t, "kafkajs (test/e2e/node_modules)", probe(".", node, "-e", "require('kafkajs')"))
	s := env(t)
	runClientProgram(t, s, "kafkajs", node, filepath.Join(s.dir, "clients", "kafkajs_client.js"))
}
