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
	"io"
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
	if r := dial(s.plain.bootstrap); r.err != nil {
		t.Fatalf("proxy %s not reachable from namespace %s:\n%s", s.plain.bootstrap, s.ns.name, r)
	}
	if r := dial(l.Addr().String()); r.err == nil {
		t.Fatalf("root-namespace loopback %s reachable from namespace %s: clients could bypass the proxy", l.Addr(), s.ns.name)
	}
	s.checkBrokersUnreachable(t, s.plain)
	t.Logf("namespace %s reaches the proxy at %s but not root loopback nor brokers %v", s.ns.name, s.plain.bootstrap, s.plain.demo.brokers)
}

// checkBrokersUnreachable dials the demo's brokers (when it prints their
// addresses) from inside the namespace, which must fail.
func (s *suite) checkBrokersUnreachable(t *testing.T, tg *target) {
	t.Helper()
	if s.ns == nil {
		return
	}
	bash, err := exec.LookPath("bash")
	requireTool(t, "bash", err)
	if len(tg.demo.brokers) == 0 {
		t.Fatalf("%s demo printed no broker addresses: nothing to check unreachable", tg.mode)
	}
	for _, b := range tg.demo.brokers {
		host, port, _ := net.SplitHostPort(b)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		r := s.run(ctx, "", bash, "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port))
		cancel()
		if r.err == nil {
			t.Errorf("%s demo's broker %s reachable from namespace %s: clients could bypass the proxy", tg.mode, b, s.ns.name)
		}
	}
}

func TestKcat(t *testing.T) {
	kcat := lookKcat(t)
	s := env(t)
	kcatFlow(t, s, s.plain, kcat)
}

func lookKcat(t *testing.T) string {
	kcat, err := exec.LookPath("kcat")
	requireTool(t, "kcat", err)
	return kcat
}

// kcatErrors returns the error reports in kcat's stderr: its own
// "% ERROR: ..." lines and librdkafka log lines of level 0-4 ("%3|...").
// Through a healthy proxy there are none, not even transient ones.
func kcatErrors(stderr string) []string {
	var errs []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "ERROR") || len(line) > 2 && line[0] == '%' && line[1] >= '0' && line[1] <= '4' && line[2] == '|' {
			errs = append(errs, line)
		}
	}
	return errs
}

// kcatOK fails t if kcat failed or reported any error.
func kcatOK(t *testing.T, what string, r result) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("kcat %s failed:\n%s", what, r)
	}
	if errs := kcatErrors(r.stderr); len(errs) > 0 {
		t.Fatalf("kcat %s reported %d errors, first: %s\n%s", what, len(errs), errs[0], r)
	}
}

// kcatFlow checks metadata and produces and consumes recordsPerTest records
// through tg with kcat's producer, simple consumer and balanced consumer.
func kcatFlow(t *testing.T, s *suite, tg *target, kcat string) {
	topic, group := "e2e-kcat"+tg.suffix, "e2e-kcat-group"+tg.suffix
	sasl := tg.kcatArgs()

	// Metadata for the seeded topic must name only the proxy's listeners.
	t.Run("metadata", func(t *testing.T) {
		r := s.run(clientCtx(t), "", append([]string{kcat, "-L", "-b", tg.bootstrap, "-t", "demo", "-J", "-m", "30"}, sasl...)...)
		kcatOK(t, "-L", r)
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
			want[net.JoinHostPort(s.listenIP, strconv.Itoa(tg.basePort+i))] = true
		}
		if tg.advertised != nil {
			want = map[string]bool{}
			for _, a := range tg.advertised {
				want[a] = true
			}
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

	// With tg.pace, the input trickles in, so the producer's connections
	// live across several broker session lifetimes.
	ok := t.Run("produce", func(t *testing.T) {
		r := s.runReader(clientCtx(t), newPacedReader(records(recordsPerTest), tg.pace), append([]string{kcat, "-P", "-b", tg.bootstrap, "-t", topic, "-K:",
			"-X", "acks=all", "-X", "message.timeout.ms=60000"}, sasl...)...)
		kcatOK(t, "produce", r)
	})
	if !ok {
		t.FailNow()
	}

	// Simple consumer: Metadata, ListOffsets and Fetch straight to each leader.
	t.Run("consume", func(t *testing.T) {
		r := s.run(clientCtx(t), "", append([]string{kcat, "-C", "-b", tg.bootstrap, "-t", topic, "-e", "-o", "beginning",
			"-q", "-f", `%k:%s\n`}, sasl...)...)
		kcatOK(t, "consume", r)
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
	// heartbeats. It runs until stopped, so stop it once everything arrived
	// (and, with tg.pace, after idling that much longer in fetch long polls).
	t.Run("consume-group", func(t *testing.T) {
		tl := newTally(recordsPerTest)
		r, done := s.runUntil(clientCtx(t), tg.pace, func(line string) bool { tl.add(line); return tl.complete() },
			append(append([]string{kcat, "-b", tg.bootstrap}, sasl...), "-G", group, "-o", "beginning", "-u", "-q", "-f", `%k:%s\n`, topic)...)
		if !done {
			t.Fatalf("kcat -G did not deliver every record: %v\n%s", tl.check(), r)
		}
		if errs := kcatErrors(r.stderr); len(errs) > 0 {
			t.Fatalf("kcat -G reported %d errors, first: %s\n%s", len(errs), errs[0], r)
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
	kcat := lookKcat(t)
	s := env(t)
	const topic, n, size = "e2e-kcat-large", 20, 900_000
	var in strings.Builder
	want := map[string]int{}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("v-%d-", i) + strings.Repeat("x", size)
		fmt.Fprintf(&in, "k-%d:%s\n", i, v)
		want[fmt.Sprintf("k-%d", i)] = len(v)
	}
	r := s.run(clientCtx(t), in.String(), kcat, "-P", "-b", s.plain.bootstrap, "-t", topic, "-K:", "-X", "acks=all")
	if r.err != nil {
		t.Fatalf("kcat produce failed:\n%s", r)
	}
	// %S is the value's size: compare sizes, not megabytes of output.
	r = s.run(clientCtx(t), "", kcat, "-C", "-b", s.plain.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q", "-f", `%k:%S\n`)
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

// runClientProgram runs one of clients/* against tg and requires exit 0 and
// its OK line (which the programs print only without client errors).
func runClientProgram(t *testing.T, s *suite, tg *target, name string, argv ...string) {
	t.Helper()
	topic, group := "e2e-"+name+tg.suffix, "e2e-"+name+"-group"+tg.suffix
	argv = append(argv, tg.bootstrap, topic, strconv.Itoa(recordsPerTest), group)
	if tg.pace > 0 {
		argv = append(argv, strconv.FormatFloat(tg.pace.Seconds(), 'f', -1, 64))
	}
	start := time.Now()
	r := s.run(clientCtx(t), "", tg.withEnv(argv)...)
	if r.err != nil {
		t.Fatalf("%s client failed after %s:\n%s", name, time.Since(start).Round(time.Millisecond), r)
	}
	if !strings.Contains(r.stdout, ": OK ") {
		t.Fatalf("%s client exited 0 without its OK summary line:\n%s", name, r)
	}
	t.Log(strings.TrimSpace(lastLine(r.stdout)))
}

// The client programs, each a func that runs it against a target (and
// skips, or fails with KAFKA_PROXY_E2E=1, when it is not installed).

func confluentClient(t *testing.T, s *suite, tg *target) {
	runClientProgram(t, s, tg, "confluent", clientProgram(t, s, "confluent")...)
}

func kafkaPythonClient(t *testing.T, s *suite, tg *target) {
	runClientProgram(t, s, tg, "kafkapython", clientProgram(t, s, "kafkapython")...)
}

func kafkaJSClient(t *testing.T, s *suite, tg *target) {
	runClientProgram(t, s, tg, "kafkajs", clientProgram(t, s, "kafkajs")...)
}

// clientProgram is the command line of a client program (confluent,
// kafkapython, kafkajs); it skips (or fails with KAFKA_PROXY_E2E=1) when
// the client is not installed.
func clientProgram(t *testing.T, s *suite, name string) []string {
	t.Helper()
	switch name {
	case "confluent":
		requireTool(t, "confluent-kafka-python (python3-confluent-kafka)", probe("", systemPython, "-c", "import confluent_kafka"))
		return []string{systemPython, filepath.Join(s.dir, "clients", "confluent_client.py")}
	case "kafkapython":
		requireTool(t, "kafka-python (python3-kafka)", probe("", systemPython, "-c", "import kafka"))
		return []string{systemPython, filepath.Join(s.dir, "clients", "kafkapython_client.py")}
	}
	node, err := exec.LookPath("node")
	requireTool(t, "node", err)
	requireTool(t, "kafkajs (test/e2e/node_modules)", probe(".", node, "-e", "require('kafkajs')"))
	return []string{node, filepath.Join(s.dir, "clients", "kafkajs_client.js")}
}

func TestConfluentKafkaPython(t *testing.T) { s := env(t); confluentClient(t, s, s.plain) }

func TestKafkaPython(t *testing.T) { s := env(t); kafkaPythonClient(t, s, s.plain) }

func TestKafkaJS(t *testing.T) { s := env(t); kafkaJSClient(t, s, s.plain) }

// pacedReader yields its lines in batches spread evenly over d (all at
// once when d is 0), so a producer reading it stays connected that long.
type pacedReader struct {
	batches [][]byte
	start   time.Time
	d       time.Duration
	next    int
	cur     []byte
}

func newPacedReader(lines string, d time.Duration) *pacedReader {
	r := &pacedReader{d: d}
	if d <= 0 {
		r.batches = [][]byte{[]byte(lines)}
		return r
	}
	all := strings.SplitAfter(lines, "\n")
	n := max(1, int(d/(100*time.Millisecond)))
	per := (len(all) + n - 1) / n
	for i := 0; i < len(all); i += per {
		r.batches = append(r.batches, []byte(strings.Join(all[i:min(len(all), i+per)], "")))
	}
	return r
}

func (r *pacedReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.next == len(r.batches) {
			return 0, io.EOF
		}
		if r.start.IsZero() {
			r.start = time.Now()
		}
		if r.d > 0 {
			time.Sleep(time.Until(r.start.Add(r.d * time.Duration(r.next) / time.Duration(len(r.batches)))))
		}
		r.cur = r.batches[r.next]
		r.next++
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
