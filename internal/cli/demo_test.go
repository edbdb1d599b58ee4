package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// demoErrOut collects the demo's stderr (the logger writes from many
// goroutines).
type demoErrOut struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *demoErrOut) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *demoErrOut) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// runDemo starts `kafka-proxy demo args...` in-process and returns the
// bootstrap address once it printed "ready", the stdout lines up to then,
// and stop, which cancels the demo and returns its error.
func runDemo(t *testing.T, args ...string) (bootstrap string, lines []string, errOut *demoErrOut, stop func() error) {
	t.Helper()
	pr, pw := io.Pipe()
	errOut = &demoErrOut{}
	root := NewRoot(pw, errOut)
	root.SetArgs(append([]string{"demo", "--port", "0", "--http-listen-address", "127.0.0.1:0", "--brokers", "1"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	stopped := false
	stop = func() error {
		cancel()
		if stopped {
			return nil
		}
		stopped = true
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("demo did not stop within 30s of cancellation")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })

	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		before := true // lines and bootstrap belong to the test once ready is closed
		for sc.Scan() {
			line := sc.Text()
			if before {
				lines = append(lines, line)
				if b, ok := strings.CutPrefix(line, "proxy bootstrap server: "); ok {
					bootstrap = b
				}
				if line == "ready" {
					before = false
					close(ready)
				}
			}
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("demo exited before ready: %v\n%s", err, errOut)
	case <-time.After(30 * time.Second):
		t.Fatalf("demo not ready within 30s\n%s", errOut)
	}
	return bootstrap, lines, errOut, stop
}

var demoStatsRE = regexp.MustCompile(`brokers saw connections=(\d+) authenticated=(\d+) reauthenticated=(\d+) auth_failures=(\d+) expired_closed=(\d+) rejected=(\d+)`)

// TestDemoSCRAMReauth runs the demo with SCRAM-SHA-512 over TLS and
// 1.5 s broker sessions and keeps a client connection busy for several
// lifetimes: the proxy renews the sessions, so the client sees no error,
// and the brokers never close an expired session. The demo removes its
// certificates on exit.
func TestDemoSCRAMReauth(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	bootstrap, lines, errOut, stop := runDemo(t, "--upstream-security", "scram-sha-512-tls", "--session-lifetime", "1500ms")
	out := strings.Join(lines, "\n")
	if !strings.Contains(out, "upstream security scram-sha-512-tls") || !strings.Contains(out, "the proxy re-authenticates") {
		t.Errorf("demo does not say which mode it runs:\n%s", out)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Errorf("want the demo's certificate directory in %s, got %v", tmp, entries)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic("demo"), kgo.ConsumeTopics("demo"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := 0
	for deadline := time.Now().Add(3500 * time.Millisecond); time.Now().Before(deadline); sent++ {
		if err := cl.ProduceSync(ctx, kgo.StringRecord("v"+strconv.Itoa(sent))).FirstErr(); err != nil {
			t.Fatalf("produce %d through the demo: %v", sent, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for got := 0; got < sent; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch after %d/%d: %v", got, sent, err)
		}
		got += fs.NumRecords()
	}
	cl.Close()

	if err := stop(); err != nil {
		t.Fatalf("demo: %v", err)
	}
	m := demoStatsRE.FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no broker stats on exit:\n%s", errOut)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	if n(3) == 0 || n(4) != 0 || n(5) != 0 || n(6) != 0 {
		t.Errorf("broker stats %q: want re-authentications and no failures, expiries or rejections", m[0])
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("demo left %v in %s", entries, tmp)
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream-security", "kerberos"}, "want one of plaintext, tls, mtls"},
		{[]string{"--upstream-security", "mtls", "--session-lifetime", "3s"}, "--session-lifetime needs a SASL mode"},
		{[]string{"--session-lifetime", "3s"}, "--session-lifetime needs a SASL mode"},
		{[]string{"--upstream-security", "scram-sha-256", "--session-lifetime", "-1s"}, "must not be negative"},
	} {
		var out bytes.Buffer
		root := NewRoot(&out, &out)
		root.SetArgs(append([]string{"demo"}, tc.args...))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("demo %v: err = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}
