package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

var selfPID = os.Getpid()

// Variant names, in their report order.
const (
	direct     = "direct"
	forward    = "forward"
	proxied    = "proxy"
	aclProxied = "proxy-acl" // kafka-proxy with ACLs checked on every request
	// The same two middles in front of a second cluster whose listeners
	// speak TLS: plain Kafka from the client, TLS to the brokers, as a
	// sidecar towards a managed cluster runs.
	forwardTLS = "forward-tls"
	proxiedTLS = "proxy-tls"
	// baseProxied is --baseline-bin's kafka-proxy, in front of the
	// plaintext cluster like proxy.
	baseProxied = "proxy-base"
)

// allVariants in report order.
var allVariants = []string{direct, forward, proxied, aclProxied, forwardTLS, proxiedTLS}

// benchACLs lets the bench's anonymous clients do everything they do,
// through the ACL stage: every request is decoded and checked.
const benchACLs = `acls:
  - principal: User:ANONYMOUS
    resource: {type: topic, name: "*"}
    operation: All
  - principal: User:ANONYMOUS
    resource: {type: group, name: "*"}
    operation: All
  - principal: User:ANONYMOUS
    resource: {type: cluster}
    operations: [IdempotentWrite, Describe]
`

// variant is one way for the client to reach the cluster.
type variant struct {
	name      string
	seed      string   // bootstrap address given to the client
	cluster   *child   // the cluster behind it
	middle    *child   // the process between client and cluster; nil for direct
	advertise []string // what brokers advertise; nil: their own addresses
	allowed   []string // every address the client may connect to
	// fresh starts another middle of this kind, for the idle phase; nil
	// for direct and for proxy-acl (its idle cost is the proxy's).
	fresh func() (*child, error)
}

// Round is one round's measurements, keyed by variant name.
type Round struct {
	Produce map[string]Throughput
	Consume map[string]Throughput
	Latency map[string]Latency
	Idle    map[string]Idle // forward, proxy and their TLS variants
	// Metadata is the metadata phase's (with --metadata-topics).
	Metadata map[string]MetadataCost `json:",omitempty"`
	Order    []string                // the order variants ran in this round
}

// Results is a whole run.
type Results struct {
	Started   time.Time
	Elapsed   time.Duration
	Config    Config
	GoVersion string
	NumCPU    int
	Kernel    string
	LoadAvg   string // at start: other work on the machine skews absolutes, not ratios
	NoFile    uint64
	// Tree is the kafka-proxy source measured: commit, plus the files
	// that differed from it (others may be editing while the bench runs).
	Tree   string
	Rounds []Round
	Hold   *Hold `json:",omitempty"`
}

// Run runs the benchmark. On error it returns what was measured so far
// along with the error.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	logf := func(format string, a ...any) { fmt.Fprintf(progress, format+"\n", a...) }
	raiseNoFile()
	res := &Results{Started: time.Now(), Config: cfg, GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		Kernel: readTrim("/proc/sys/kernel/osrelease"), LoadAvg: readTrim("/proc/loadavg"), NoFile: noFileCur()}
	defer func() { res.Elapsed = time.Since(res.Started) }()

	tmp, err := os.MkdirTemp("", "kafka-proxy-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := cfg.ProxyBin
	if bin == "" {
		logf("building kafka-proxy")
		res.Tree = treeState(ctx)
		if bin, err = buildProxy(ctx, tmp); err != nil {
			return nil, err
		}
	} else {
		res.Tree = "prebuilt " + bin
	}

	cluster, err := startCluster(cfg)
	if err != nil {
		return nil, err
	}
	defer cluster.stop()
	brokers := cluster.addrs
	fwd, err := startForwarder(brokers)
	if err != nil {
		return nil, err
	}
	defer fwd.stop()
	px, err := startProxy(bin, brokers, cfg.ProxyFlags)
	if err != nil {
		return nil, err
	}
	defer px.stop()
	aclFile := filepath.Join(tmp, "acls.yaml")
	if err := os.WriteFile(aclFile, []byte(benchACLs), 0o600); err != nil {
		return nil, err
	}
	pxa, err := startProxy(bin, brokers, append(slices.Clone(cfg.ProxyFlags), "--acl-file", aclFile))
	if err != nil {
		return nil, err
	}
	defer pxa.stop()
	logf("cluster pid %d %v; forwarder pid %d %v; kafka-proxy pid %d %v; kafka-proxy with ACLs pid %d %v",
		cluster.pid(), brokers, fwd.pid(), fwd.addrs, px.pid(), px.addrs, pxa.pid(), pxa.addrs)

	tlsFiles, err := writeTLSFiles(tmp)
	if err != nil {
		return nil, err
	}
	tlsCluster, err := startCluster(cfg, "--tls-cert", tlsFiles.cert, "--tls-key", tlsFiles.key)
	if err != nil {
		return nil, err
	}
	defer tlsCluster.stop()
	tlsBrokers := tlsCluster.addrs
	startFwdTLS := func() (*child, error) { return startForwarder(tlsBrokers, "--tls-ca", tlsFiles.ca) }
	pxTLSFlags := append(slices.Clone(cfg.ProxyFlags), "--tls-enable", "--tls-ca-chain-cert-file", tlsFiles.ca)
	startPxTLS := func() (*child, error) { return startProxy(bin, tlsBrokers, pxTLSFlags) }
	fwdTLS, err := startFwdTLS()
	if err != nil {
		return nil, err
	}
	defer fwdTLS.stop()
	pxTLS, err := startPxTLS()
	if err != nil {
		return nil, err
	}
	defer pxTLS.stop()
	logf("TLS cluster pid %d %v; TLS-originating forwarder pid %d %v; kafka-proxy with TLS to the brokers pid %d %v",
		tlsCluster.pid(), tlsBrokers, fwdTLS.pid(), fwdTLS.addrs, pxTLS.pid(), pxTLS.addrs)

	variants := []*variant{
		{name: direct, seed: brokers[0], cluster: cluster, allowed: brokers},
		{name: forward, seed: fwd.addrs[0], cluster: cluster, middle: fwd, advertise: fwd.addrs, allowed: fwd.addrs,
			fresh: func() (*child, error) { return startForwarder(brokers) }},
		{name: proxied, seed: px.addrs[0], cluster: cluster, middle: px, allowed: px.addrs,
			fresh: func() (*child, error) { return startProxy(bin, brokers, cfg.ProxyFlags) }},
		{name: aclProxied, seed: pxa.addrs[0], cluster: cluster, middle: pxa, allowed: pxa.addrs},
		{name: forwardTLS, seed: fwdTLS.addrs[0], cluster: tlsCluster, middle: fwdTLS, advertise: fwdTLS.addrs, allowed: fwdTLS.addrs,
			fresh: startFwdTLS},
		{name: proxiedTLS, seed: pxTLS.addrs[0], cluster: tlsCluster, middle: pxTLS, allowed: pxTLS.addrs, fresh: startPxTLS},
	}
	if cfg.BaselineBin != "" {
		startBase := func() (*child, error) { return startProxy(cfg.BaselineBin, brokers, cfg.ProxyFlags) }
		pxb, err := startBase()
		if err != nil {
			return nil, fmt.Errorf("--baseline-bin: %w", err)
		}
		defer pxb.stop()
		logf("baseline kafka-proxy %s pid %d %v", cfg.BaselineBin, pxb.pid(), pxb.addrs)
		variants = append(variants, &variant{name: baseProxied, seed: pxb.addrs[0], cluster: cluster, middle: pxb, allowed: pxb.addrs, fresh: startBase})
	}
	use := func(v *variant) error {
		if v.advertise == nil {
			return v.cluster.command("advertise real")
		}
		return v.cluster.command("advertise " + strings.Join(v.advertise, ","))
	}

	if cfg.MetadataTopics > 0 && cfg.runs("metadata", "") {
		logf("creating %d topics of %d partitions for the metadata phase", cfg.MetadataTopics, cfg.MetadataPartitions)
		if err := createMetadataTopics(ctx, brokers[0], cfg.MetadataTopics, cfg.MetadataPartitions); err != nil {
			return nil, fmt.Errorf("metadata topics: %w", err)
		}
	}

	for r := 0; r < cfg.Rounds; r++ {
		round := Round{Produce: map[string]Throughput{}, Consume: map[string]Throughput{},
			Latency: map[string]Latency{}, Idle: map[string]Idle{}}
		order := rotate(variants, r)
		for _, v := range order {
			round.Order = append(round.Order, v.name)
		}
		active := func(phase string) []*variant {
			var out []*variant
			for _, v := range order {
				// The metadata topics exist in the plaintext cluster only.
				if cfg.runs(phase, v.name) && (phase != "metadata" || v.cluster == cluster) {
					out = append(out, v)
				}
			}
			return out
		}
		log := func(phase, v, line string) { logf("round %d/%d %-8s %-8s %s", r+1, cfg.Rounds, phase, v, line) }
		var err error
		if vs := active("produce"); len(vs) > 0 {
			round.Produce, err = throughputPhase(ctx, cfg, vs, use,
				func(v *variant) (windower, error) { return newProducer(ctx, v, cfg.RecordBytes, cfg.Warmup) })
			for _, v := range vs {
				log("produce", v.name, fmtThroughput(round.Produce[v.name], v))
			}
			err = wrapRound(err, r, "produce")
		}
		if vs := active("consume"); err == nil && len(vs) > 0 {
			round.Consume, err = throughputPhase(ctx, cfg, vs, use,
				func(v *variant) (windower, error) { return newConsumer(ctx, v, cfg.Warmup) })
			for _, v := range vs {
				log("consume", v.name, fmtThroughput(round.Consume[v.name], v))
			}
			err = wrapRound(err, r, "consume")
		}
		if vs := active("latency"); err == nil && len(vs) > 0 {
			round.Latency, err = latencyPhase(ctx, cfg, vs, use)
			for _, v := range vs {
				l := round.Latency[v.name]
				log("latency", v.name, fmt.Sprintf("p50 %s p99 %s p999 %s max %s (%d samples, %d late), middle CPU %.1fµs/req",
					us(l.P50), us(l.P99), us(l.P999), us(l.Max), l.Samples, l.Late, l.cpuPerRequest()))
			}
			err = wrapRound(err, r, "latency")
		}
		if vs := active("metadata"); err == nil && cfg.MetadataTopics > 0 && len(vs) > 0 {
			round.Metadata, err = metadataPhase(ctx, vs, use, cfg.MetadataTopics)
			for _, v := range vs {
				m := round.Metadata[v.name]
				log("metadata", v.name, fmt.Sprintf("%d KB: middle CPU %s per request, p50 %s; %d concurrent: peak RSS %s (%d answered)",
					m.Bytes/1000, us(m.MiddleCPU/time.Duration(max(m.Requests, 1))), us(m.P50), metadataConcurrent, mib(m.PeakRSS), m.ConcurrentOK))
			}
			err = wrapRound(err, r, "metadata")
		}
		for _, c := range []*child{cluster, tlsCluster} {
			if err == nil {
				err = c.command("advertise real")
			}
		}
		if err == nil && cfg.runs("idle", "") {
			// Fresh middles, so that memory freed by the throughput
			// phases cannot hide what idle connections cost.
			for _, v := range order {
				if v.fresh == nil || !cfg.runs("idle", v.name) {
					continue
				}
				var idle Idle
				if idle, err = freshIdle(v.fresh, cfg.IdleConns); err != nil {
					err = fmt.Errorf("round %d idle %s: %w", r+1, v.name, err)
					break
				}
				round.Idle[v.name] = idle
				logf("round %d/%d %-8s %-8s %d conns: RSS %s -> %s, %.1f KiB per connection; after one %d KiB produce each: %s, %.1f KiB per connection",
					r+1, cfg.Rounds, "idle", v.name, idle.Conns, mib(idle.RSSBefore), mib(idle.RSSAfter), idle.PerConnByte/1024,
					trafficBytes>>10, mib(idle.RSSAfterTraffic), idle.PerConnAfterTraffic/1024)
			}
		}
		res.Rounds = append(res.Rounds, round)
		if err != nil {
			return res, err
		}
	}
	if cfg.HoldConns > 0 && cfg.runs("hold", proxied) {
		h, err := freshHold(bin, brokers, cfg.ProxyFlags, cfg.HoldConns, cfg.HoldFor)
		if err != nil {
			return res, err
		}
		res.Hold = &h
		logf("hold     proxy    %d/%d connections held %v (opened in %v, %.1f KiB RSS each, %d fds in the proxy)%s%s",
			h.Held, h.Conns, h.HoldPeriod, h.OpenTime.Round(time.Millisecond), h.RSSPerConn/1024, h.MiddleFDs, note(h.FailureNote), note(capNote(&h)))
	}
	return res, nil
}

func wrapRound(err error, r int, phase string) error {
	if err != nil {
		return fmt.Errorf("round %d %s: %w", r+1, phase, err)
	}
	return nil
}

// withLogs adds the last stderr lines of the processes involved to err.
func withLogs(err error, procs ...*child) error {
	if err == nil {
		return nil
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		if tail := lastLines(p.stderr.String(), 5); tail != "" {
			err = fmt.Errorf("%w\n  %s (pid %d) stderr: %s", err, p.name, p.pid(), tail)
		}
	}
	return err
}

// windower is a warmed-up client that moves data for a given time.
type windower interface {
	window(ctx context.Context, d time.Duration) (bytes, records int64, err error)
	close() error // also checks that the client connected only where allowed
}

// slicing splits a measured duration into slices of about cfg.Slice.
func slicing(cfg Config, d time.Duration) (int, time.Duration) {
	n := max(1, int((d+cfg.Slice/2)/cfg.Slice))
	return n, d / time.Duration(n)
}

// throughputPhase alternates the variants in short slices (each slice in a
// rotated order) until each had cfg.Duration measured. Every slice opens a
// fresh client, warms it up unmeasured, measures, and closes it: clients
// of two variants are never alive together, since the cluster advertises
// the addresses of the active variant only. CPU time is charged per slice.
func throughputPhase(ctx context.Context, cfg Config, vs []*variant, use func(*variant) error,
	open func(*variant) (windower, error)) (map[string]Throughput, error) {
	out := map[string]Throughput{}
	n, d := slicing(cfg, cfg.Duration)
	for s := 0; s < n; s++ {
		for _, v := range rotate(vs, s) {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			if err := use(v); err != nil {
				return out, err
			}
			c, err := open(v)
			if err != nil {
				return out, withLogs(fmt.Errorf("%s: %w", v.name, err), v.middle, v.cluster)
			}
			m := meter{middle: v.middle, cluster: v.cluster}
			peakKnown := v.middle != nil && resetPeakRSS(v.middle.pid()) == nil
			before, start := m.snap(), time.Now()
			bytes, records, err := c.window(ctx, d)
			elapsed, cpu := time.Since(start), m.snap().sub(before)
			var peak int64
			if peakKnown {
				peak, _ = procPeakRSS(v.middle.pid())
			}
			if cerr := c.close(); err == nil {
				err = cerr
			}
			if err != nil {
				return out, withLogs(fmt.Errorf("%s: %w", v.name, err), v.middle, v.cluster)
			}
			t := out[v.name]
			t.Bytes += bytes
			t.Records += records
			t.Elapsed += elapsed
			t.MiddleCPU += cpu.middle
			t.ClusterCPU += cpu.cluster
			t.ClientCPU += cpu.client
			t.MiddlePeakRSS = max(t.MiddlePeakRSS, peak)
			out[v.name] = t
		}
	}
	return out, nil
}

// latencyPhase is throughputPhase for the paced round trips; the samples
// of a variant's slices are pooled.
func latencyPhase(ctx context.Context, cfg Config, vs []*variant, use func(*variant) error) (map[string]Latency, error) {
	out := map[string]Latency{}
	samples := map[string]*pinger{}
	n, d := slicing(cfg, cfg.LatencyDuration)
	for s := 0; s < n; s++ {
		for _, v := range rotate(vs, s) {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			if err := use(v); err != nil {
				return out, err
			}
			p, err := newPinger(ctx, v, cfg.RecordBytes)
			if err != nil {
				return out, withLogs(fmt.Errorf("%s: %w", v.name, err), v.middle)
			}
			if acc := samples[v.name]; acc != nil {
				p.samples, p.late, p.middleCPU = acc.samples, acc.late, acc.middleCPU
			}
			m := meter{middle: v.middle, cluster: v.cluster}
			before := m.snap()
			err = p.window(ctx, cfg.Rate, d)
			p.middleCPU += m.snap().sub(before).middle
			if cerr := p.close(); err == nil {
				err = cerr
			}
			if err != nil {
				return out, withLogs(fmt.Errorf("%s: %w", v.name, err), v.middle)
			}
			samples[v.name] = p
		}
	}
	for name, p := range samples {
		out[name] = p.result()
	}
	return out, nil
}

// freshIdle measures idle-connection memory in a newly started middle.
func freshIdle(start func() (*child, error), n int) (Idle, error) {
	mid, err := start()
	if err != nil {
		return Idle{}, err
	}
	defer mid.stop()
	return measureIdle(mid, mid.addrs[0], n)
}

func freshHold(bin string, brokers, flags []string, n int, d time.Duration) (Hold, error) {
	mid, err := startProxy(bin, brokers, flags)
	if err != nil {
		return Hold{}, err
	}
	defer mid.stop()
	return holdConns(mid, mid.addrs[0], n, d), nil
}

// rotate starts round r at element r, so every variant runs first, middle
// and last equally often: slow drift of the machine hits all alike.
func rotate[T any](s []T, r int) []T {
	out := make([]T, 0, len(s))
	for i := range s {
		out = append(out, s[(i+r)%len(s)])
	}
	return out
}

func fmtThroughput(t Throughput, v *variant) string {
	s := fmt.Sprintf("%7.1f MB/s (%d records in %v)", t.MBps(), t.Records, t.Elapsed.Round(time.Millisecond))
	if v.middle != nil {
		s += fmt.Sprintf(" middle %.2f s/GB", t.perGB(t.MiddleCPU))
	}
	return s + fmt.Sprintf(" cluster %.2f s/GB client %.2f s/GB", t.perGB(t.ClusterCPU), t.perGB(t.ClientCPU))
}

func us(d time.Duration) string { return fmt.Sprintf("%dµs", d.Microseconds()) }

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
