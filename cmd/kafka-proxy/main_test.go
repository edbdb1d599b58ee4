package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// proxyBinary is the kafka-proxy built once for all tests: the process-level
// behaviour (flags, exit codes, signals) only exists in the real binary.
var proxyBinary string

const testVersion = "v0.0.0-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kafka-proxy-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	proxyBinary = filepath.Join(dir, "kafka-proxy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	err = kafkatest.BuildProxy(ctx, proxyBinary, false, "-X github.com/kafka-proxy/kafka-proxy/internal/cli.Version="+testVersion)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running kafka-proxy whose JSON log is parsed as it arrives.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, after done

	mu     sync.Mutex
	logs   []map[string]any
	stderr strings.Builder
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(proxyBinary, args...), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var entry map[string]any
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			if json.Unmarshal(sc.Bytes(), &entry) == nil {
				p.logs = append(p.logs, entry)
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("kafka-proxy %s stderr:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLog waits for a log entry with message msg and returns it.
func (p *proc) waitLog(msg string) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, e := range p.logs {
			if e["@message"] == msg {
				p.mu.Unlock()
				return e
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			p.t.Fatalf("kafka-proxy exited (%v) before logging %q", p.err, msg)
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("kafka-proxy did not log %q", msg)
	return nil
}

// listeners returns the proxy's listen addresses, by broker.
func (p *proc) listeners() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for _, e := range p.logs {
		if e["@message"] == "listening" {
			out[e["broker"].(string)] = e["listen"].(string)
		}
	}
	return out
}

// signal sends sig and returns how long the process took to exit.
func (p *proc) signal(sig os.Signal, within time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		p.t.Fatalf("kafka-proxy did not exit within %v of %v", within, sig)
	}
	return time.Since(start)
}

// run runs kafka-proxy to completion and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, proxyBinary, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func newCluster(t *testing.T, opts ...kfake.Opt) *memkafka.Cluster {
	t.Helper()
	c, err := memkafka.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// serverArgs maps broker to a port the kernel picks and puts the admin
// endpoints on loopback; the bound addresses are read from the log.
func serverArgs(broker string, extra ...string) []string {
	return append([]string{"server",
		"--bootstrap-server-mapping", broker + ",127.0.0.1:0",
		"--http-listen-address", "127.0.0.1:0",
		"--log-format", "json",
		"--kafka-dial-timeout", "2s",
	}, extra...)
}

// TestServe runs the binary in front of a 3-broker cluster with only the
// first broker mapped: a franz-go client works through it, reaching the
// others through dynamic listeners only, and the endpoints answer.
func TestServe(t *testing.T) {
	cluster := newCluster(t, kfake.SeedTopics(3, "t"))
	brokers := cluster.ListenAddrs()
	p := start(t, serverArgs(brokers[0], "--shutdown-drain-timeout", "5s")...)
	p.waitLog("kafka-proxy started")
	admin := "http://" + p.waitLog("http endpoints")["listen"].(string)
	bootstrap := p.listeners()[brokers[0]]
	if bootstrap == "" {
		t.Fatalf("no listener for %s in %v", brokers[0], p.listeners())
	}

	for path, want := range map[string]int{"/health": 200, "/ready": 200, "/nope": 404} {
		if code, body := httpGet(t, admin+path); code != want {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}

	var dialMu sync.Mutex
	var dialed []string
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic("t"),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			dialMu.Lock()
			dialed = append(dialed, host)
			dialMu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, network, host)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 6 { // spread over partitions, hence over brokers
		rec := &kgo.Record{Value: []byte("v"), Partition: int32(i % 3)}
		if err := client.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce through the proxy: %v", err)
		}
	}
	listens := map[string]bool{}
	for _, l := range p.listeners() {
		listens[l] = true
	}
	if len(listens) != 3 {
		t.Errorf("want the bootstrap listener and two dynamic ones, got %v", p.listeners())
	}
	dialMu.Lock()
	for _, d := range dialed {
		if !listens[d] {
			t.Errorf("client dialled %s, which is not a proxy listener (%v)", d, p.listeners())
		}
	}
	dialMu.Unlock()

	code, metrics := httpGet(t, admin+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	b0 := regexp.QuoteMeta(brokers[0])
	for _, re := range []string{
		`proxy_opened_connections\{broker="` + b0 + `"\} [1-9]`,
		`proxy_connections_total\{broker="` + b0 + `"\} [1-9]`,
		`proxy_requests_total\{api_key="18",api_version="\d+",broker="` + b0 + `"\} [1-9]`, // ApiVersions
		`proxy_requests_total\{api_key="3",api_version="\d+",broker="` + b0 + `"\} [1-9]`,  // Metadata
		`proxy_requests_total\{api_key="0",api_version="\d+",broker="127\.0\.0\.1:\d+"\} [1-9]`,
		`proxy_requests_bytes\{broker="` + b0 + `"\} [1-9]`,
		`proxy_responses_bytes\{broker="` + b0 + `"\} [1-9]`,
	} {
		if !regexp.MustCompile(`(?m)^` + re).MatchString(metrics) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}

	// SIGTERM with a client still connected: stop, drain, exit 0.
	took := p.signal(syscall.SIGTERM, 7*time.Second)
	t.Logf("exited %v after SIGTERM", took)
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v", p.err)
	}
	if took > 5*time.Second {
		t.Errorf("took %v to exit, longer than the drain timeout", took)
	}
	p.waitLog("kafka-proxy stopped")
}

// fetch sends a Fetch for the empty topic "t" on a raw connection: the
// broker holds it for wait before answering, so it is in flight for that
// long.
func fetch(t *testing.T, addr string, wait time.Duration) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := kmsg.NewPtrFetchRequest()
	req.Version = 4 // topics by name; not rewritten by the proxy
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, int32(wait/time.Millisecond), 1, 1<<20
	topic := kmsg.NewFetchRequestTopic()
	topic.Topic = "t"
	part := kmsg.NewFetchRequestTopicPartition()
	part.PartitionMaxBytes = 1 << 20
	topic.Partitions = append(topic.Partitions, part)
	req.Topics = append(req.Topics, topic)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("drain-test")).AppendRequest(nil, req, 42)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readFetchResponse reads the response fetch's request is owed.
func readFetchResponse(conn net.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	if id := int32(binary.BigEndian.Uint32(body)); id != 42 {
		return fmt.Errorf("correlation id %d, want 42", id)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 4
	if err := resp.ReadFrom(body[4:]); err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		return fmt.Errorf("unexpected response %+v", resp)
	}
	return nil
}

// TestDrainInFlight: on SIGTERM a Fetch waiting at the broker is answered
// before the proxy exits 0; the drain timeout bounds that wait (still exit
// 0); a second signal does not wait at all.
func TestDrainInFlight(t *testing.T) {
	cluster := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	broker := cluster.ListenAddrs()[0]
	cases := []struct {
		name      string
		fetchWait time.Duration
		drain     string
		second    bool
		atLeast   time.Duration // from SIGTERM to exit
		max       time.Duration
		answered  bool // the client gets its Fetch response
		lastLog   string
	}{
		{name: "response awaited", fetchWait: 1500 * time.Millisecond, drain: "20s",
			atLeast: time.Second, max: 4 * time.Second, answered: true, lastLog: "kafka-proxy stopped"},
		{name: "drain timeout", fetchWait: 20 * time.Second, drain: "1s",
			atLeast: 900 * time.Millisecond, max: 3 * time.Second, lastLog: "shutdown: drain timeout reached, closed remaining connections"},
		{name: "second signal", fetchWait: 20 * time.Second, drain: "20s", second: true, max: 2 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, serverArgs(broker, "--shutdown-drain-timeout", c.drain)...)
			p.waitLog("kafka-proxy started")
			admin := "http://" + p.waitLog("http endpoints")["listen"].(string)
			conn := fetch(t, p.listeners()[broker], c.fetchWait)
			// Signal only once the proxy forwarded the Fetch: a request
			// it has not read yet is not in flight.
			fetching := regexp.MustCompile(`(?m)^proxy_requests_total\{api_key="1",`)
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, m := httpGet(t, admin+"/metrics"); fetching.MatchString(m) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no Fetch forwarded")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if c.second {
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				p.waitLog("shutting down: stopped accepting, draining in-flight requests")
			}
			took := p.signal(syscall.SIGTERM, c.max)
			t.Logf("exited %v after SIGTERM: %v", took, p.err)
			if c.second {
				if !strings.Contains(fmt.Sprint(p.err), "signal: terminated") {
					t.Errorf("second SIGTERM: exit %v, want killed by the signal", p.err)
				}
				return
			}
			if p.err != nil {
				t.Fatalf("exit: %v, want 0", p.err)
			}
			if took < c.atLeast {
				t.Errorf("exited %v after SIGTERM, want at least %v", took, c.atLeast)
			}
			err := readFetchResponse(conn)
			if c.answered && err != nil {
				t.Errorf("in-flight Fetch not answered: %v", err)
			}
			if !c.answered && err == nil {
				t.Error("Fetch answered although the drain timed out first")
			}
			p.waitLog(c.lastLog)
		})
	}
}

// TestNotReady: with its broker down the proxy is alive but not ready;
// SIGINT stops it with exit 0.
func TestNotReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	p := start(t, serverArgs(closed)...)
	p.waitLog("kafka-proxy started")
	admin := "http://" + p.waitLog("http endpoints")["listen"].(string)
	if code, _ := httpGet(t, admin+"/health"); code != 200 {
		t.Errorf("/health = %d, want 200", code)
	}
	if code, body := httpGet(t, admin+"/ready"); code != 503 || !strings.Contains(body, "no broker reachable") {
		t.Errorf("/ready = %d %q, want 503", code, body)
	}
	p.signal(syscall.SIGINT, 5*time.Second)
	if p.err != nil {
		t.Errorf("exit after SIGINT: %v", p.err)
	}
}

// TestFailingStart: bad input fails at start, before anything listens,
// with a non-zero exit and a message naming the flag or YAML path.
func TestFailingStart(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("kafka:\n  dialTimeot: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"server", "--bootstrap-server-mapping", "kafka-0:9092"},
			[]string{`"--bootstrap-server-mapping"`, "want remotehost:port,localhost:port[,advhost:advport]"}},
		{[]string{"server", "--bootstrap-server-mapping", "kafka-0:9092,127.0.0.1:1", "--bootstrap-server-mapping", "kafka-1:9092,127.0.0.1:1"},
			[]string{"proxy.bootstrapServers[1].listen: local port 1 is already used by proxy.bootstrapServers[0]"}},
		{[]string{"server", "--config", badYAML},
			[]string{"kafka.dialTimeot (line 2): unknown key"}},
		{[]string{"server", "--bootstrap-server-mapping", "127.0.0.1:9,127.0.0.1:" + strings.Split(busy.Addr().String(), ":")[1], "--http-disable"},
			[]string{"listen " + busy.Addr().String(), "address already in use"}},
		{[]string{"validate", "--log-format", "xml"},
			[]string{"proxy.bootstrapServers: at least one mapping is required", `log.format: "xml" is not text or json`}},
		{[]string{"serve"}, []string{`unknown command "serve"`}},
	}
	for _, c := range cases {
		code, stdout, stderr := run(t, c.args...)
		if code == 0 {
			t.Errorf("%v: exit 0", c.args)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr does not contain %q:\n%s%s", c.args, w, stderr, stdout)
			}
		}
	}
}

func TestVersionAndValidate(t *testing.T) {
	code, stdout, stderr := run(t, "version")
	if code != 0 || stdout != "kafka-proxy "+testVersion+"\n" {
		t.Errorf("version: %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "validate", "--bootstrap-server-mapping", "kafka-0:9092,127.0.0.1:32400")
	if code != 0 || stdout != "configuration is valid\n" {
		t.Errorf("validate: %d %q %q", code, stdout, stderr)
	}
}

// TestHangupKeepsServing: SIGHUP reloads what can be reloaded and never
// ends the process (without a handler it would exit with 129); SIGINT
// then stops it with exit 0.
func TestHangupKeepsServing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := start(t, serverArgs(ln.Addr().String())...)
	admin := "http://" + p.waitLog("http endpoints")["listen"].(string)
	p.waitLog("kafka-proxy started")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog("SIGHUP: reloading")
	if code, _ := httpGet(t, admin+"/health"); code != 200 {
		t.Fatalf("/health after SIGHUP = %d", code)
	}
	p.signal(syscall.SIGINT, 5*time.Second)
	if p.err != nil {
		t.Errorf("exit after SIGHUP and SIGINT: %v", p.err)
	}
}

// count is how many log lines have msg.
func (p *proc) count(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.logs {
		if e["@message"] == msg {
			n++
		}
	}
	return n
}

// last is the latest log line with msg, nil if none.
func (p *proc) last(msg string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.logs) - 1; i >= 0; i-- {
		if p.logs[i]["@message"] == msg {
			return p.logs[i]
		}
	}
	return nil
}
