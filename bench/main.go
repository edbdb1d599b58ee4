// Command bench measures kafka-proxy against the two baselines that bound
// it, in the same run and interleaved: clients talking to the brokers
// directly, and through a raw TCP forwarder (io.Copy between sockets, the
// floor for any byte-level proxy); and, with TLS to a second cluster,
// against a TLS-originating forwarder. See docs/performance.md.
//
//	go run ./bench                 # full run (5 rounds, about 10 minutes)
//	go run ./bench --quick         # smoke run, under 30 seconds
//	go run ./bench cluster ...     # child: the kfake cluster process (TLS with --tls-cert)
//	go run ./bench forward ...     # child: the raw TCP forwarder process (TLS to the brokers with --tls-ca)
//
// The cluster, the middle (forwarder or kafka-proxy) and the client each run
// in their own process, so that the middle's CPU time and memory can be read
// from /proc without the other two mixed in.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// dispatch runs a child mode if args name one, else the benchmark. It is
// shared with the test binary's TestMain, which re-executes itself for the
// child processes just as the bench binary does.
func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		var err error
		switch args[0] {
		case "cluster":
			err = runCluster(args[1:], stdin, stdout)
		case "forward":
			err = runForward(args[1:], stdin, stdout)
		default:
			return benchMain(args, stdout, stderr)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench %s: %v\n", args[0], err)
			return 1
		}
		return 0
	}
	return benchMain(args, stdout, stderr)
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Progress = stderr
	res, err := Run(ctx, cfg)
	if res != nil {
		res.WriteReport(stdout)
		if cfg.JSON != "" {
			if jerr := res.WriteJSON(cfg.JSON); jerr != nil {
				fmt.Fprintf(stderr, "bench: %v\n", jerr)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// Config is one benchmark run.
type Config struct {
	Rounds          int           // rounds; every number reported is a median over them
	Duration        time.Duration // measured window of each throughput phase, per variant
	Warmup          time.Duration // unmeasured lead-in of every throughput slice
	Slice           time.Duration // variants alternate in slices of about this long
	LatencyDuration time.Duration // measured window of the paced latency phase, per variant
	Rate            int           // produce requests per second in the latency phase
	Brokers         int
	Partitions      int
	RecordBytes     int
	IdleConns       int           // idle proxied connections for the RSS measurement
	HoldConns       int           // concurrent connections for the hold check (0: skip)
	HoldFor         time.Duration // how long the hold check keeps them open
	// MetadataTopics × MetadataPartitions is the cluster the metadata
	// phase asks full Metadata of (0 topics: no metadata phase).
	MetadataTopics     int
	MetadataPartitions int
	ProxyBin           string // prebuilt kafka-proxy binary; empty: go build one
	// BaselineBin, if set, is another kafka-proxy build measured in the
	// same run as variant proxy-base, to compare two builds under the
	// same machine state (development).
	BaselineBin string
	ProxyFlags  []string // extra `kafka-proxy server` flags (development, tuning)
	JSON        string   // also write raw results here
	Phases      []string // subset of phases to run (development); nil: all
	Variants    []string // subset of variants to run (development); nil: all
	Quick       bool
	Progress    io.Writer `json:"-"` // progress lines; nil: discarded
}

// DefaultConfig is the full run: about ten minutes on two cores.
func DefaultConfig() Config {
	return Config{
		Rounds:          5,
		Duration:        4 * time.Second,
		Warmup:          500 * time.Millisecond,
		Slice:           time.Second,
		LatencyDuration: 4 * time.Second,
		Rate:            1000,
		Brokers:         3,
		Partitions:      3,
		RecordBytes:     1024,
		IdleConns:       2000,
		HoldConns:       10000,
		HoldFor:         3 * time.Second,

		MetadataPartitions: 10,
	}
}

// QuickConfig is the smoke run: one short round, well under 30 seconds.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Rounds = 1
	c.Duration = time.Second
	c.Warmup = 200 * time.Millisecond
	c.Slice = 500 * time.Millisecond
	c.LatencyDuration = time.Second
	c.IdleConns = 500
	c.HoldConns = 2000
	c.HoldFor = 500 * time.Millisecond
	c.Quick = true
	return c
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "smoke run under 30 s: 1 round, 1 s phases, fewer connections (explicit flags still apply)")
	d := DefaultConfig()
	rounds := fs.Int("rounds", d.Rounds, "rounds; reported numbers are medians over rounds, variants interleaved within each")
	dur := fs.Duration("duration", d.Duration, "measured window per variant of each throughput phase")
	warm := fs.Duration("warmup", d.Warmup, "unmeasured lead-in of every throughput slice (each slice has a fresh client)")
	slice := fs.Duration("slice", d.Slice, "within a round, variants alternate in slices of about this long")
	latDur := fs.Duration("latency-duration", d.LatencyDuration, "measured window per variant of the paced latency phase")
	rate := fs.Int("rate", d.Rate, "produce requests per second in the latency phase (one record each, one in flight)")
	brokers := fs.Int("brokers", d.Brokers, "brokers in the kfake cluster")
	parts := fs.Int("partitions", d.Partitions, "partitions of each benchmark topic")
	recBytes := fs.Int("record-bytes", d.RecordBytes, "record value size")
	idle := fs.Int("idle-conns", d.IdleConns, "idle connections opened to measure RSS per connection")
	hold := fs.Int("hold-conns", d.HoldConns, "concurrent proxied connections the hold check opens (0 skips it)")
	holdFor := fs.Duration("hold-for", d.HoldFor, "how long the hold check keeps its connections open")
	metaTopics := fs.Int("metadata-topics", d.MetadataTopics, "topics the metadata phase creates and asks full Metadata of (0: no metadata phase)")
	metaParts := fs.Int("metadata-partitions", d.MetadataPartitions, "partitions of each metadata-phase topic")
	bin := fs.String("proxy-bin", "", "prebuilt kafka-proxy binary (default: go build ./cmd/kafka-proxy into a temp dir)")
	base := fs.String("baseline-bin", "", "development: another kafka-proxy binary, measured in the same run as variant proxy-base (plaintext, default settings)")
	var proxyFlags stringsFlag
	fs.Var(&proxyFlags, "proxy-flag", "extra `kafka-proxy server` argument, repeatable (e.g. --proxy-flag=--debug-enable); the report names them")
	js := fs.String("json", "", "also write the raw per-round results as JSON to this file")
	phases := fs.String("phases", "", "development: comma-separated subset of produce,consume,latency,idle,hold,metadata (targets need all)")
	variants := fs.String("variants", "", "development: comma-separated subset of "+strings.Join(allVariants, ",")+" (targets need all)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (modes: cluster, forward)", fs.Arg(0))
	}
	cfg := d
	if *quick {
		cfg = QuickConfig()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	apply := func(name string, fn func()) {
		if set[name] {
			fn()
		}
	}
	apply("rounds", func() { cfg.Rounds = *rounds })
	apply("duration", func() { cfg.Duration = *dur })
	apply("warmup", func() { cfg.Warmup = *warm })
	apply("slice", func() { cfg.Slice = *slice })
	apply("latency-duration", func() { cfg.LatencyDuration = *latDur })
	apply("rate", func() { cfg.Rate = *rate })
	apply("brokers", func() { cfg.Brokers = *brokers })
	apply("partitions", func() { cfg.Partitions = *parts })
	apply("record-bytes", func() { cfg.RecordBytes = *recBytes })
	apply("idle-conns", func() { cfg.IdleConns = *idle })
	apply("hold-conns", func() { cfg.HoldConns = *hold })
	apply("hold-for", func() { cfg.HoldFor = *holdFor })
	apply("metadata-topics", func() { cfg.MetadataTopics = *metaTopics })
	apply("metadata-partitions", func() { cfg.MetadataPartitions = *metaParts })
	cfg.ProxyBin, cfg.BaselineBin, cfg.JSON, cfg.ProxyFlags = *bin, *base, *js, proxyFlags
	if *phases != "" {
		cfg.Phases = strings.Split(*phases, ",")
	}
	if *variants != "" {
		cfg.Variants = strings.Split(*variants, ",")
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	switch {
	case c.Rounds < 1 || c.Rounds > 100:
		return fmt.Errorf("--rounds %d: want 1..100", c.Rounds)
	case c.Duration < 100*time.Millisecond || c.Duration > 10*time.Minute:
		return fmt.Errorf("--duration %v: want 100ms..10m", c.Duration)
	case c.Slice < 50*time.Millisecond || c.Slice > 10*time.Minute:
		return fmt.Errorf("--slice %v: want 50ms..10m", c.Slice)
	case c.Warmup < 0 || c.Warmup > time.Minute:
		return fmt.Errorf("--warmup %v: want 0..1m", c.Warmup)
	case c.LatencyDuration < 100*time.Millisecond || c.LatencyDuration > 10*time.Minute:
		return fmt.Errorf("--latency-duration %v: want 100ms..10m", c.LatencyDuration)
	case c.Rate < 1 || c.Rate > 100000:
		return fmt.Errorf("--rate %d: want 1..100000", c.Rate)
	case c.Brokers < 1 || c.Brokers > 16:
		return fmt.Errorf("--brokers %d: want 1..16", c.Brokers)
	case c.Partitions < 1 || c.Partitions > 1000:
		return fmt.Errorf("--partitions %d: want 1..1000", c.Partitions)
	case c.RecordBytes < 1 || c.RecordBytes > 1<<20:
		return fmt.Errorf("--record-bytes %d: want 1..1MiB", c.RecordBytes)
	case c.IdleConns < 1 || c.IdleConns > 20000:
		return fmt.Errorf("--idle-conns %d: want 1..20000", c.IdleConns)
	case c.HoldConns < 0 || c.HoldConns > 20000:
		return fmt.Errorf("--hold-conns %d: want 0..20000", c.HoldConns)
	case c.HoldFor < 0 || c.HoldFor > 10*time.Minute:
		return fmt.Errorf("--hold-for %v: want 0..10m", c.HoldFor)
	case c.MetadataTopics < 0 || c.MetadataTopics > 20000:
		return fmt.Errorf("--metadata-topics %d: want 0..20000", c.MetadataTopics)
	case c.MetadataPartitions < 1 || c.MetadataPartitions > 100:
		return fmt.Errorf("--metadata-partitions %d: want 1..100", c.MetadataPartitions)
	}
	for _, p := range c.Phases {
		if !slices.Contains([]string{"produce", "consume", "latency", "idle", "hold", "metadata"}, p) {
			return fmt.Errorf("--phases: unknown phase %q", p)
		}
	}
	for _, v := range c.Variants {
		if !slices.Contains(allVariants, v) && v != baseProxied {
			return fmt.Errorf("--variants: unknown variant %q", v)
		}
	}
	return nil
}

// runs reports whether the configuration includes phase and variant.
func (c Config) runs(phase, variant string) bool {
	return (c.Phases == nil || slices.Contains(c.Phases, phase)) &&
		(c.Variants == nil || variant == "" || slices.Contains(c.Variants, variant))
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }
