package robustness

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// stormKinds are the ways a storm connection behaves.
var stormKinds = []string{
	"connect and close",
	"full ApiVersions, read answer, close",
	"half a request, close",
	"full Metadata, close before the answer",
	"half a request, reset",
	"full ApiVersions, read answer, reset",
	"idle, reset",
}

// stormConn runs one storm connection of the given kind.
func stormConn(addr string, kind int, meta []byte) (err error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s>%s: %w", c.LocalAddr(), addr, err)
		}
	}()
	tc := c.(*net.TCPConn)
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	reset := func() { _ = tc.SetLinger(0) } // close sends RST
	av := apiVersionsFrame(int32(kind))
	switch kind {
	case 0:
	case 1, 5:
		if _, err := tc.Write(av); err != nil {
			return err
		}
		f, err := readFrame(tc)
		if err != nil {
			return fmt.Errorf("ApiVersions answer: %w", err)
		}
		resp := kmsg.NewApiVersionsResponse()
		resp.Version = 3
		if err := resp.ReadFrom(f[4:]); err != nil || resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
			return fmt.Errorf("ApiVersions answer: %v, error code %d, %d keys", err, resp.ErrorCode, len(resp.ApiKeys))
		}
		if kind == 5 {
			reset()
		}
	case 2, 4:
		if _, err := tc.Write(av[:len(av)/2]); err != nil {
			return err
		}
		if kind == 4 {
			reset()
		}
	case 3:
		if _, err := tc.Write(meta); err != nil {
			return err
		}
	case 6:
		reset()
	}
	return nil
}

// TestConnectionStorm opens and closes 10,000 connections, 200 at a time,
// mixing clean closes, resets, closes in the middle of a request and
// closes with a response in flight. Afterwards the process (proxy and
// in-process brokers) must be back to its goroutine and file descriptor
// counts, the proxy must report no open connections, and it must have
// logged every connection's end.
func TestConnectionStorm(t *testing.T) {
	const (
		total       = 10000
		concurrency = 200
	)
	raiseNoFile(t, 4*concurrency+1024)
	_, p := setup(t, nil)
	var addrs []string
	for _, l := range p.Server.Listeners() {
		addrs = append(addrs, l.Addr.String())
	}
	metaReq := kmsg.NewMetadataRequest()
	metaReq.Version = 9
	meta := requestFrame(&metaReq, 77)

	run := func(n int) (failed []error) {
		var mu sync.Mutex
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					kind := i % len(stormKinds)
					if err := stormConn(addrs[i%len(addrs)], kind, meta); err != nil {
						mu.Lock()
						failed = append(failed, fmt.Errorf("%s: %w", stormKinds[kind], err))
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		return failed
	}

	// Warm up every path (buffer pools, kfake's lazily started
	// goroutines, the runtime's netpoller), then take the baseline once
	// the proxy is idle.
	if failed := run(5 * len(stormKinds)); len(failed) > 0 {
		t.Fatalf("warm-up: %v", failed[0])
	}
	idle := func() bool { return openConnections(t, p) == 0 }
	if !settle(10*time.Second, idle) {
		t.Fatalf("proxy still has %v connections open after warm-up", openConnections(t, p))
	}
	time.Sleep(200 * time.Millisecond)
	baseG, baseFD := stableCounts(t)
	acceptedBefore := acceptedConnections(t, p)

	start := time.Now()
	failed := run(total)
	elapsed := time.Since(start)
	t.Logf("%d connections in %v (%.0f/s), %d failed", total, elapsed.Round(time.Millisecond), total/elapsed.Seconds(), len(failed))
	// A refused or reset connection under load would be a proxy fault:
	// every storm connection must have been served.
	if len(failed) > 0 {
		t.Errorf("%d storm connections failed, e.g. %v", len(failed), failed[:min(len(failed), 5)])
		logged := closedByRemote(p.Logs.String())
		for _, err := range failed[:min(len(failed), 5)] {
			_, rest, _ := strings.Cut(err.Error(), ": ") // after the kind
			key, _, _ := strings.Cut(rest, ": ")
			t.Logf("proxy on %s: %+v", key, logged[key])
		}
	}
	if got := acceptedConnections(t, p) - acceptedBefore; got != total {
		t.Errorf("proxy accepted %v connections, want %d", got, total)
	}

	var g, fd int
	ok := settle(30*time.Second, func() bool {
		g, fd = stableCounts(t)
		return openConnections(t, p) == 0 && g <= baseG+5 && fd <= baseFD+5
	})
	t.Logf("goroutines %d -> %d, file descriptors %d -> %d", baseG, g, baseFD, fd)
	if !ok {
		t.Errorf("after the storm: %v connections open, %d goroutines (baseline %d), %d fds (baseline %d); goroutines by function:\n%s",
			openConnections(t, p), g, baseG, fd, baseFD, summarizeGoroutines(goroutineDump()))
	}
	logs := p.Logs.String()
	if n := strings.Count(logs, `msg="connection closed`); n < total {
		t.Errorf("proxy logged %d connection ends, want at least %d", n, total)
	}
	if strings.Contains(logs, "accept failed") {
		t.Errorf("proxy failed to accept during the storm (out of descriptors?)")
	}
	// Still serving.
	if err := stormConn(addrs[0], 1, meta); err != nil {
		t.Errorf("proxy does not serve after the storm: %v", err)
	}
}

// stableCounts returns the goroutine and fd counts once two readings a
// little apart agree.
func stableCounts(t *testing.T) (goroutines, fds int) {
	prevG, prevFD := -1, -1
	for i := 0; i < 20; i++ {
		g, fd := numGoroutine(), openFDs(t)
		if g == prevG && fd == prevFD {
			return g, fd
		}
		prevG, prevFD = g, fd
		time.Sleep(100 * time.Millisecond)
	}
	return prevG, prevFD
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to at least n (up to the hard
// limit) for the storm; the runtime already raises it at start on Linux.
func raiseNoFile(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < n {
		t.Skipf("need %d file descriptors, limit is %d: %v", n, lim.Cur, err)
	}
}

// openConnections is the proxy_opened_connections gauge summed over
// brokers.
func openConnections(t *testing.T, p *kafkatest.Proxy) float64 {
	return p.MetricSum(t, "proxy_opened_connections", nil)
}

// acceptedConnections is proxy_connections_total summed over brokers.
func acceptedConnections(t *testing.T, p *kafkatest.Proxy) float64 {
	return p.MetricSum(t, "proxy_connections_total", nil)
}
