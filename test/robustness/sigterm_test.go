package robustness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// buildProxy builds the kafka-proxy binary into dir.
func buildProxy(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kafka-proxy")
	start := time.Now()
	if err := kafkatest.BuildProxy(context.Background(), bin, false, ""); err != nil {
		t.Fatal(err)
	}
	t.Logf("built kafka-proxy in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// freePorts reserves n loopback ports and releases them for the proxy.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// TestSIGTERMDuringLoad runs the real kafka-proxy binary in front of an
// in-process cluster, produces through it with an idempotent acks=all
// franz-go producer, and sends SIGTERM mid-run. The process must exit 0
// after draining; reading the topic directly from the brokers, every
// record the producer saw acknowledged must be there exactly once, and no
// record may be there that the producer did not see acknowledged: a
// request that reached a broker had its answer delivered.
func TestSIGTERMDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const topic = "robust-sigterm"
	c := setupCluster(t)
	bin := buildProxy(t, t.TempDir())
	brokers := c.ListenAddrs()
	ports := freePorts(t, len(brokers))
	args := []string{"server", "--http-disable", "--dynamic-listeners-disable", "--shutdown-drain-timeout", "15s", "--log-level", "debug"}
	var listen []string
	for i, b := range brokers {
		l := fmt.Sprintf("127.0.0.1:%d", ports[i])
		listen = append(listen, l)
		args = append(args, "--bootstrap-server-mapping", b+","+l)
	}
	var out kafkatest.LogBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("kafka-proxy output (tail):\n%s", tail(out.String(), 60))
		}
	})
	if !settle(20*time.Second, func() bool { return strings.Contains(out.String(), "kafka-proxy started") }) {
		t.Fatalf("kafka-proxy did not start:\n%s", out.String())
	}

	isProxy := func(addr string) bool {
		for _, l := range listen {
			if l == addr {
				return true
			}
		}
		return false
	}
	var bypass atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !isProxy(addr) {
			bypass.Add(1)
			return nil, fmt.Errorf("refusing non-proxy address %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(listen[0]),
		kgo.Dialer(dial),
		kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default
		kgo.MaxBufferedRecords(4000),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Produce ~1 KiB records (requests span several TCP segments) at a
	// paced 10,000/s, bounded in count, until told to stop.
	const (
		maxRecords = 40000
		perMilli   = 10
	)
	led := newLedger()
	var sent atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	produced := make(chan struct{})
	value := bytes.Repeat([]byte("0123456789abcdef"), 64)
	go func() {
		defer close(produced)
		start := time.Now()
		for i := 0; i < maxRecords; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%perMilli == 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i/perMilli) * time.Millisecond)))
			}
			r := &kgo.Record{Key: fmt.Appendf(nil, "s-%d", i), Value: value}
			sent.Add(1)
			cl.Produce(ctx, r, led.record)
		}
	}()
	if !settle(30*time.Second, func() bool { a, _ := led.counts(); return a >= 5000 }) {
		a, f := led.counts()
		var example error
		led.mu.Lock()
		for _, err := range led.failed {
			example = err
			break
		}
		led.mu.Unlock()
		t.Fatalf("only %d records acknowledged (%d failed, e.g. %v) before SIGTERM", a, f, example)
	}
	// SIGTERM while a Produce is at a broker: the signal is sent from
	// the broker's handler, which then holds the answer 300 ms, so the
	// proxy is draining when it comes back.
	var (
		armed       atomic.Bool
		ackedAtTerm int
		termAt      time.Time
		termErr     = make(chan error, 1)
	)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if armed.CompareAndSwap(true, false) {
			ackedAtTerm, _ = led.counts()
			termAt = time.Now()
			termErr <- cmd.Process.Signal(syscall.SIGTERM)
			time.Sleep(300 * time.Millisecond)
		}
		return nil, nil, false // then handled as usual
	})
	armed.Store(true)
	select {
	case err := <-termErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Produce reached a broker to send SIGTERM from")
	}
	var exitErr error
	select {
	case exitErr = <-exited:
		stopped = true
	case <-time.After(30 * time.Second):
		t.Fatalf("kafka-proxy did not exit within 30s of SIGTERM")
	}
	exitTook := time.Since(termAt)
	ackedAtExit, _ := led.counts()
	// The proxy is gone and every request that reached it has been
	// answered, but answers may still sit unread in the client's socket:
	// let the client take them in (acknowledgements stop changing), then
	// stop the producer (cancel unblocks a Produce waiting for buffer
	// space) and close the client, which fails what is still buffered.
	for prev := -1; ; {
		a, _ := led.counts()
		if a == prev {
			break
		}
		prev = a
		time.Sleep(500 * time.Millisecond)
	}
	close(stop)
	cancel()
	<-produced
	cl.Close()
	if !settle(10*time.Second, func() bool { a, f := led.counts(); return int64(a+f) == sent.Load() }) {
		a, f := led.counts()
		t.Errorf("%d records produced but only %d acknowledged and %d failed", sent.Load(), a, f)
	}

	var ee *exec.ExitError
	switch {
	case errors.As(exitErr, &ee):
		t.Errorf("kafka-proxy exited with %v after SIGTERM, want 0", ee)
	case exitErr != nil:
		t.Errorf("kafka-proxy: %v", exitErr)
	}
	logs := out.String()
	if !strings.Contains(logs, "kafka-proxy stopped") {
		t.Errorf("no orderly stop in the log")
	}
	if strings.Contains(logs, "drain timeout reached") {
		t.Errorf("drain timed out: requests were cut off")
	}
	if n := bypass.Load(); n > 0 {
		t.Errorf("producer tried %d non-proxy addresses", n)
	}
	acked, failed := led.counts()
	// Every acknowledgement after SIGTERM came through the draining proxy
	// (some are read by the client only after the proxy exited).
	if acked <= ackedAtTerm {
		t.Errorf("no record was acknowledged after SIGTERM although a Produce was at the broker: the in-flight request was not completed")
	}
	t.Logf("sent %d, acknowledged %d (%d when SIGTERM was sent, %d more by the proxy's exit), failed %d; exit %v after SIGTERM",
		sent.Load(), acked, ackedAtTerm, ackedAtExit-ackedAtTerm, failed, exitTook.Round(time.Millisecond))
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Logf("proxy: %s", l)
		}
	}
	got := readAll(t, brokers, topic, 30*time.Second)
	checkExactlyOnce(t, led, got, true)
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
