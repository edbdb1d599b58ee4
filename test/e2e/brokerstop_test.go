package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBrokerStopReachesIdleClient: librdkafka, idle inside the network
// namespace, hears within seconds that its brokers went away, because the
// proxy closes a client connection as soon as its broker closes the one
// behind it (a restart, connections.max.idle.ms). The brokers are a demo's
// (its own proxy is not used); the proxy under test is a separate
// `kafka-proxy server` in front of them, so they can stop while it runs.
func TestBrokerStopReachesIdleClient(t *testing.T) {
	s := suiteFor(t)
	requireTool(t, "confluent-kafka-python (python3-confluent-kafka)", probe("", systemPython, "-c", "import confluent_kafka"))
	brokers, err := s.startTarget("plaintext", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer brokers.demo.stop()
	if len(brokers.demo.brokers) == 0 {
		t.Fatalf("the demo did not print its brokers' addresses:\n%s", brokers.demo.out.tail(20))
	}

	base, err := freePortRange(s.listenIP, len(brokers.demo.brokers))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"server", "--dynamic-listeners-disable", "--http-listen-address", "127.0.0.1:0"}
	for i, b := range brokers.demo.brokers {
		args = append(args, "--bootstrap-server-mapping", fmt.Sprintf("%s,%s", b, net.JoinHostPort(s.listenIP, strconv.Itoa(base+i))))
	}
	proxyOut := &lockedBuffer{}
	proxy := exec.Command(s.bin, args...)
	proxy.Stdout, proxy.Stderr = proxyOut, proxyOut
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = proxy.Process.Signal(syscall.SIGTERM)
		_ = proxy.Wait()
		if t.Failed() {
			t.Logf("kafka-proxy server output:\n%s", proxyOut.tail(40))
		}
	}()
	bootstrap := net.JoinHostPort(s.listenIP, strconv.Itoa(base))
	if err := waitListening(bootstrap, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	marker := filepath.Join(t.TempDir(), "idle")
	stdin, signal := io.Pipe()
	defer signal.Close()
	done := make(chan result, 1)
	go func() {
		done <- s.runReader(clientCtx(t), stdin, systemPython, filepath.Join(s.dir, "clients", "confluent_idle.py"),
			bootstrap, "e2e-idle", marker, "5")
	}()
	if r, ok := waitFile(marker, done, 30*time.Second); !ok {
		t.Fatalf("the client never went idle:\n%s", r)
	}
	if err := brokers.demo.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := signal.Write([]byte("stopped\n")); err != nil {
		t.Fatal(err)
	}
	_ = signal.Close() // exec copies stdin until EOF: the client's Wait needs it
	r := <-done
	if r.err != nil || !strings.Contains(r.stdout, ": OK ") {
		t.Fatalf("client:\n%s", r)
	}
	t.Log(strings.TrimSpace(lastLine(r.stdout)))
	if !strings.Contains(proxyOut.String(), "broker closed the connection while no request was in flight") {
		t.Errorf("the proxy did not log why it closed the client connections:\n%s", proxyOut.tail(40))
	}
}

// waitListening waits until something accepts TCP connections at addr.
func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens at %s after %v: %w", addr, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFile waits for path to exist; if the client ends first, its result is
// returned with false.
func waitFile(path string, client <-chan result, d time.Duration) (result, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return result{}, true
		}
		select {
		case r := <-client:
			return r, false
		case <-ctx.Done():
			return result{err: ctx.Err()}, false
		case <-tick.C:
		}
	}
}
