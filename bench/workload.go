package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// meter snapshots the CPU time of every process taking part, so a phase
// can charge each its share.
type meter struct {
	middle  *child // nil for direct
	cluster *child
}

type cpuSnap struct{ middle, cluster, client time.Duration }

func (m meter) snap() cpuSnap {
	s := cpuSnap{cluster: m.cluster.cpu()}
	if m.middle != nil {
		s.middle = m.middle.cpu()
	}
	s.client, _ = procCPU(selfPID)
	return s
}

func (s cpuSnap) sub(o cpuSnap) cpuSnap {
	return cpuSnap{middle: s.middle - o.middle, cluster: s.cluster - o.cluster, client: s.client - o.client}
}

// Throughput is one variant's measured window of a produce or consume phase.
type Throughput struct {
	Bytes      int64         // record value bytes acked (produce) or received (consume)
	Records    int64         //
	Elapsed    time.Duration //
	MiddleCPU  time.Duration // 0 for direct
	ClusterCPU time.Duration
	ClientCPU  time.Duration
	// MiddlePeakRSS is the middle's highest VmHWM over the phase's slices,
	// each slice starting from the RSS it had then (0 for direct, or if
	// the kernel cannot reset the peak).
	MiddlePeakRSS int64 `json:",omitempty"`
}

// MBps is decimal megabytes of record values per second.
func (t Throughput) MBps() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Bytes) / 1e6 / t.Elapsed.Seconds()
}

// perGB is CPU seconds per decimal gigabyte of record values moved.
func (t Throughput) perGB(cpu time.Duration) float64 {
	if t.Bytes == 0 {
		return 0
	}
	return cpu.Seconds() / (float64(t.Bytes) / 1e9)
}

// dialCheck is a kgo hook that records every address the client connected
// to, so a run can prove that its client never bypassed the middle.
type dialCheck struct {
	mu    sync.Mutex
	addrs map[string]bool
}

func (d *dialCheck) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	if err != nil || conn == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.addrs == nil {
		d.addrs = map[string]bool{}
	}
	d.addrs[conn.RemoteAddr().String()] = true
}

// verify fails if the client connected anywhere but allowed.
func (d *dialCheck) verify(allowed []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.addrs) == 0 {
		return errors.New("client connected nowhere")
	}
	for a := range d.addrs {
		if !slices.Contains(allowed, a) {
			return fmt.Errorf("client connected to %s, outside the variant's addresses %v", a, allowed)
		}
	}
	return nil
}

func newClient(v *variant, check *dialCheck, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(v.seed),
		kgo.WithHooks(check),
		kgo.ClientID("kafka-proxy-bench"),
		kgo.DialTimeout(10 * time.Second),
		kgo.RequestTimeoutOverhead(10 * time.Second),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// producer is one variant's throughput producer for one slice.
type producer struct {
	v      *variant
	cl     *kgo.Client
	check  *dialCheck
	value  []byte
	maxRec int64 // per window: bounded in count as well as time

	acked, records atomic.Int64
	failure        atomic.Pointer[error]
}

// newProducer connects to v and produces for warm, unmeasured. Settings:
// acks=all, idempotent (kgo's defaults), no compression, 1 ms linger,
// kgo's default partitioner; the records are recordBytes of random bytes.
func newProducer(ctx context.Context, v *variant, recordBytes int, warm time.Duration) (*producer, error) {
	p := &producer{v: v, check: &dialCheck{}, value: make([]byte, recordBytes)}
	_, _ = rand.Read(p.value) // incompressible, as real payloads mostly are
	// Far above what a loopback cluster acks per second.
	p.maxRec = int64(20e9/float64(recordBytes)) + 1000
	var err error
	p.cl, err = newClient(v, p.check,
		kgo.DefaultProduceTopic(produceTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedBytes(16<<20),
		kgo.ProduceRequestTimeout(10*time.Second),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)
	if err != nil {
		return nil, err
	}
	if _, _, err := p.window(ctx, max(warm, 10*time.Millisecond)); err != nil {
		p.cl.Close()
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return p, nil
}

func (p *producer) promise(r *kgo.Record, err error) {
	if err != nil {
		p.failure.CompareAndSwap(nil, &err)
		return
	}
	p.acked.Add(int64(len(r.Value)))
	p.records.Add(1)
}

// window produces as fast as the client can for d, then waits until every
// record produced is acked; it returns the record value bytes acked.
func (p *producer) window(ctx context.Context, d time.Duration) (bytes, records int64, err error) {
	p.acked.Store(0)
	p.records.Store(0)
	pctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	limit := int64(float64(p.maxRec)*d.Seconds()) + 1000
	end := time.Now().Add(d)
	for n := int64(0); n < limit && time.Now().Before(end); n++ {
		p.cl.Produce(pctx, &kgo.Record{Value: p.value}, p.promise)
		if p.failure.Load() != nil {
			break
		}
	}
	if err := p.cl.Flush(pctx); err != nil {
		return 0, 0, fmt.Errorf("flush: %w", err)
	}
	if e := p.failure.Load(); e != nil {
		return 0, 0, fmt.Errorf("produce: %w", *e)
	}
	return p.acked.Load(), p.records.Load(), nil
}

func (p *producer) close() error {
	p.cl.Close()
	return p.check.verify(p.v.allowed)
}

// consumer is one variant's consumer of the synthetic topic (every
// partition, no group) for one slice.
type consumer struct {
	v     *variant
	cl    *kgo.Client
	check *dialCheck
}

func newConsumer(ctx context.Context, v *variant, warm time.Duration) (*consumer, error) {
	c := &consumer{v: v, check: &dialCheck{}}
	var err error
	c.cl, err = newClient(v, c.check,
		kgo.ConsumeTopics(consumeTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.poll(ctx, warm, true); err != nil {
		c.cl.Close()
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return c, nil
}

// window counts the record value bytes polled for d.
func (c *consumer) window(ctx context.Context, d time.Duration) (bytes, records int64, err error) {
	return c.poll(ctx, d, false)
}

// poll counts what PollFetches returns for d; with needData it goes on
// (up to 20 s more) until some record arrived.
func (c *consumer) poll(ctx context.Context, d time.Duration, needData bool) (bytes, records int64, err error) {
	end := time.Now().Add(d)
	hard := end.Add(20 * time.Second) // a first fetch may take a while
	for i := 0; i < 10_000_000; i++ {
		now := time.Now()
		if now.After(hard) || (now.After(end) && (!needData || bytes > 0)) {
			break
		}
		pend := end
		if needData && bytes == 0 {
			pend = hard
		}
		pctx, cancel := context.WithDeadline(ctx, pend)
		fs := c.cl.PollFetches(pctx)
		cancel()
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			return bytes, records, fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			bytes += int64(len(r.Value))
			records++
		})
		if err := ctx.Err(); err != nil {
			return bytes, records, err
		}
	}
	if needData && bytes == 0 {
		return 0, 0, errors.New("no records received")
	}
	return bytes, records, nil
}

func (c *consumer) close() error {
	c.cl.Close()
	return c.check.verify(c.v.allowed)
}

// Latency is one variant's paced produce round trips in one round.
type Latency struct {
	Samples   int
	Late      int // sends that could not start on schedule (previous one too slow)
	P50, P99  time.Duration
	P999, Max time.Duration
	// MiddleCPU is the middle's CPU time over the measured windows
	// (0 for direct): divided by Samples, its cost per small request.
	MiddleCPU time.Duration
}

// pinger is one variant's latency producer: one record per request,
// acks=all, no linger, one request in flight, always partition 0.
type pinger struct {
	v       *variant
	cl      *kgo.Client
	check   *dialCheck
	value   []byte
	samples []time.Duration
	late    int
	// middleCPU is the middle's CPU over the windows measured so far.
	middleCPU time.Duration
}

func newPinger(ctx context.Context, v *variant, recordBytes int) (*pinger, error) {
	p := &pinger{v: v, check: &dialCheck{}, value: make([]byte, recordBytes)}
	_, _ = rand.Read(p.value)
	var err error
	p.cl, err = newClient(v, p.check,
		kgo.DefaultProduceTopic(produceTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(10*time.Second),
		kgo.RecordDeliveryTimeout(10*time.Second),
	)
	if err != nil {
		return nil, err
	}
	for i := 0; i < 200; i++ { // warm-up: connection, producer id, caches
		if _, err := p.send(ctx); err != nil {
			p.cl.Close()
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	return p, nil
}

// send times one round trip: from handing the record to kgo until its ack.
func (p *pinger) send(ctx context.Context) (time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	t0 := time.Now()
	err := p.cl.ProduceSync(rctx, &kgo.Record{Value: p.value, Partition: 0}).FirstErr()
	return time.Since(t0), err
}

// window sends at rate requests per second for d. A send that cannot
// start on time (the previous round trip took longer than the interval)
// is counted late and the schedule restarts from now, so there are no
// catch-up bursts.
func (p *pinger) window(ctx context.Context, rate int, d time.Duration) error {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	next := time.Now()
	for i := 0; i < n; i++ {
		next = next.Add(interval)
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		} else if -w > interval/2 {
			p.late++
			next = time.Now()
		}
		rtt, err := p.send(ctx)
		if err != nil {
			return err
		}
		p.samples = append(p.samples, rtt)
	}
	return nil
}

func (p *pinger) result() Latency {
	s := slices.Clone(p.samples)
	slices.Sort(s)
	if len(s) == 0 {
		return Latency{}
	}
	return Latency{Samples: len(s), Late: p.late, MiddleCPU: p.middleCPU,
		P50: quantile(s, 0.50), P99: quantile(s, 0.99), P999: quantile(s, 0.999), Max: s[len(s)-1]}
}

// cpuPerRequest is the middle's CPU per round trip, in µs.
func (l Latency) cpuPerRequest() float64 {
	if l.Samples == 0 {
		return 0
	}
	return float64(l.MiddleCPU.Nanoseconds()) / 1e3 / float64(l.Samples)
}

func (p *pinger) close() error {
	p.cl.Close()
	return p.check.verify(p.v.allowed)
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
