package robustness

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// killableCluster is a kfake cluster whose brokers can be killed (listener
// and every accepted connection closed, as when the process dies) and
// restarted on the same port, so the proxy's mapping stays valid.
type killableCluster struct {
	*kfake.Cluster
	mu    sync.Mutex
	conns map[int][]net.Conn // by broker port
	ports []int              // by node id
}

func newKillableCluster(t *testing.T, opts ...kfake.Opt) *killableCluster {
	t.Helper()
	k := &killableCluster{conns: map[int][]net.Conn{}}
	opts = append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)
	opts = append(opts, kfake.ListenFn(k.listen))
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k.Cluster = c
	for _, a := range c.ListenAddrs() { // node i is the i-th address
		_, port, _ := net.SplitHostPort(a)
		var p int
		fmt.Sscan(port, &p)
		k.ports = append(k.ports, p)
	}
	return k
}

func (k *killableCluster) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &trackingListener{Listener: ln, k: k, port: ln.Addr().(*net.TCPAddr).Port}, nil
}

type trackingListener struct {
	net.Listener
	k    *killableCluster
	port int
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.k.mu.Lock()
		l.k.conns[l.port] = append(l.k.conns[l.port], c)
		l.k.mu.Unlock()
	}
	return c, err
}

// dropConns closes every connection node accepted.
func (k *killableCluster) dropConns(node int32) {
	port := k.ports[node]
	k.mu.Lock()
	conns := k.conns[port]
	delete(k.conns, port)
	k.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// killDuringProduce kills node while it handles a Produce request: its
// connections are dropped before the request is applied, so the records
// are written but the answer never leaves the broker (the worst moment
// for a producer), then the node leaves the cluster. It returns when the
// node is gone.
func (k *killableCluster) killDuringProduce(t *testing.T, node int32, timeout time.Duration) {
	t.Helper()
	var fired atomic.Bool
	removed := make(chan error, 1)
	k.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if k.CurrentNode() != node || fired.Swap(true) {
			return nil, nil, false
		}
		k.dropConns(node)
		// RemoveNode runs on the cluster loop, which is busy with us.
		go func() { removed <- k.RemoveNode(node) }()
		return nil, nil, false // applied normally; the answer is lost
	})
	select {
	case err := <-removed:
		if err != nil {
			t.Fatalf("kill node %d: %v", node, err)
		}
	case <-time.After(timeout):
		t.Fatalf("no Produce reached node %d within %v", node, timeout)
	}
	k.dropConns(node) // any accepted since
}

// restart brings node back on its old port.
func (k *killableCluster) restart(t *testing.T, node int32) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ { // the port may take a moment to be free
		if _, _, err = k.AddNode(node, k.ports[node]); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restart node %d on port %d: %v", node, k.ports[node], err)
}

// clientErrors counts what a franz-go client saw go wrong.
type clientErrors struct {
	reads, writes, connects, disconnects atomic.Int64
}

func (h *clientErrors) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		h.reads.Add(1)
	}
}

func (h *clientErrors) OnBrokerWrite(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		h.writes.Add(1)
	}
}

func (h *clientErrors) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.connects.Add(1)
	}
}

func (h *clientErrors) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { h.disconnects.Add(1) }

// TestBrokerKilledDuringProduce kills a partition leader in the middle of
// an idempotent produce run through the proxy and restarts it on the same
// port a second later. The producer must see the failure (connection
// errors, retriable produce errors), reconnect through the proxy, get
// every record acknowledged, and each acknowledged record must be in the
// log exactly once. After the restart, a partition moved onto the
// restarted broker must be writable through the proxy's same listener.
func TestBrokerKilledDuringProduce(t *testing.T) {
	const (
		topic      = "robust-kill"
		partitions = 6
		total      = 6000
		perMilli   = 3 // paced: about 2 s of producing
		victim     = int32(1)
	)
	k := newKillableCluster(t, kfake.SeedTopics(partitions, topic))
	for p := int32(0); p < partitions; p += 2 {
		if err := k.MoveTopicPartition(topic, p, victim); err != nil {
			t.Fatal(err)
		}
	}
	p := kafkatest.StartProxy(t, k.ListenAddrs(), nil)
	t.Cleanup(func() { p.CheckNoBypass(t) })
	victimAddr := k.ListenAddrs()[victim]

	var hooks clientErrors
	var clientLog kafkatest.LogBuffer
	cl := proxyClient(t, p,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(1000),
		kgo.WithHooks(&hooks),
		kgo.WithLogger(kgo.BasicLogger(&clientLog, kgo.LogLevelInfo, nil)),
	)
	led := newLedger()
	ctx := ctxT(t, 90*time.Second)
	var produced atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for i := 0; i < total; i++ {
			if i%perMilli == 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i/perMilli) * time.Millisecond)))
			}
			cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k-%d", i), Value: []byte("v")}, led.record)
			produced.Add(1)
		}
	}()

	if !settle(20*time.Second, func() bool { a, _ := led.counts(); return a >= total/5 }) {
		t.Fatal("producer made no progress before the kill")
	}
	ackedAtKill, _ := led.counts()
	k.killDuringProduce(t, victim, 10*time.Second)
	killedAt := time.Now()
	time.Sleep(time.Second)
	ackedWhileDown, _ := led.counts()
	k.restart(t, victim)
	t.Logf("killed node %d (%s) with %d acknowledged, restarted after %v with %d acknowledged",
		victim, victimAddr, ackedAtKill, time.Since(killedAt).Round(time.Millisecond), ackedWhileDown)

	<-done
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	acked, failed := led.counts()
	t.Logf("acknowledged %d, failed %d; client saw %d read errors, %d write errors, %d failed connects, %d disconnects",
		acked, failed, hooks.reads.Load(), hooks.writes.Load(), hooks.connects.Load(), hooks.disconnects.Load())
	if failed > 0 {
		led.mu.Lock()
		for k, err := range led.failed {
			t.Errorf("record %s failed: %v (and %d more)", k, err, failed-1)
			break
		}
		led.mu.Unlock()
	}
	if acked+failed != total {
		t.Errorf("%d records outcomes, want %d", acked+failed, total)
	}
	// The client noticed the kill (its connections through the proxy to
	// the dead broker broke), and the proxy logged the sessions it could
	// not serve while the broker was down.
	if hooks.reads.Load()+hooks.writes.Load()+hooks.disconnects.Load() == 0 {
		t.Errorf("the client saw no connection error: the kill did not reach it")
	}
	retriable := 0
	for _, l := range strings.Split(clientLog.String(), "\n") {
		for _, m := range []string{"requeueing", "not_leader", "produce request failed", "unable to request api versions", "EOF", "connection reset"} {
			if strings.Contains(strings.ToLower(l), strings.ToLower(m)) {
				retriable++
				break
			}
		}
	}
	t.Logf("client log lines about retriable failures (requeued produces, not-leader moves, broken connections): %d", retriable)
	if retriable == 0 {
		t.Errorf("the client logged no retriable failure")
	}
	if !p.Logs.Contains("connection closed", "broker="+victimAddr) {
		t.Errorf("proxy logged no session end towards the killed broker %s", victimAddr)
	}

	// The restarted broker serves again through the same listener.
	for part := int32(0); part < partitions; part++ {
		if err := k.MoveTopicPartition(topic, part, victim); err != nil {
			t.Fatal(err)
		}
	}
	after := make([]*kgo.Record, 100)
	for i := range after {
		after[i] = &kgo.Record{Key: fmt.Appendf(nil, "after-%d", i), Value: []byte("v")}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, r := range cl.ProduceSync(rctx, after...) {
		led.record(r.Record, r.Err)
		if r.Err != nil {
			t.Fatalf("produce %d to the restarted broker: %v", i, r.Err)
		}
	}

	got := readAll(t, k.ListenAddrs(), topic, 30*time.Second)
	checkExactlyOnce(t, led, got, false)
	if n := len(got); n != total+len(after) {
		t.Errorf("log holds %d distinct keys, want %d", n, total+len(after))
	}
}
