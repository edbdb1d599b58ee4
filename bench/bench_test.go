package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bench's child processes:
// Run re-executes os.Executable() with "cluster" or "forward" first.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "cluster" || os.Args[1] == "forward") {
		os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuick runs a shortened quick mode end to end: every variant,
// all phases, the hold check with fewer connections. It fails if any
// variant moves no bytes or any phase errs; it does not judge the targets,
// which need the full run on a quiet machine (and no race detector).
func TestQuick(t *testing.T) {
	cfg := QuickConfig()
	cfg.Duration = 500 * time.Millisecond
	cfg.Warmup = 200 * time.Millisecond
	cfg.LatencyDuration = 300 * time.Millisecond
	cfg.IdleConns = 200
	cfg.HoldConns = 500
	cfg.HoldFor = 200 * time.Millisecond
	cfg.MetadataTopics = 30
	var progress bytes.Buffer
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, cfg)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var report bytes.Buffer
	res.WriteReport(&report)
	t.Logf("report (%v):\n%s", time.Since(start).Round(time.Millisecond), report.String())

	if len(res.Rounds) != 1 {
		t.Fatalf("%d rounds, want 1", len(res.Rounds))
	}
	rd := res.Rounds[0]
	for _, v := range allVariants {
		if p := rd.Produce[v]; p.Bytes == 0 || p.Records == 0 {
			t.Errorf("%s produced no bytes: %+v", v, p)
		}
		if c := rd.Consume[v]; c.Bytes == 0 || c.Records == 0 {
			t.Errorf("%s consumed no bytes: %+v", v, c)
		}
		if l := rd.Latency[v]; l.Samples == 0 || l.P50 <= 0 {
			t.Errorf("%s has no latency samples: %+v", v, l)
		}
		tls := v == forwardTLS || v == proxiedTLS
		if m := rd.Metadata[v]; !tls && (m.Requests != metadataRequests || m.P50 <= 0 || m.ConcurrentOK != metadataConcurrent || v != direct && m.PeakRSS == 0) {
			t.Errorf("%s metadata phase: %+v", v, m)
		}
		if v != direct {
			if p := rd.Produce[v]; p.MiddleCPU <= 0 && p.Bytes > 50e6 {
				t.Errorf("%s: no middle CPU time recorded for %d bytes", v, p.Bytes)
			}
			if i, ok := rd.Idle[v]; v != aclProxied && (!ok || i.Conns != cfg.IdleConns || i.RSSAfter == 0) {
				t.Errorf("%s idle phase: %+v", v, i)
			}
			if p := rd.Produce[v]; p.MiddlePeakRSS == 0 {
				t.Errorf("%s: no peak RSS recorded over the produce phase", v)
			}
		}
	}
	if h := res.Hold; h == nil || h.Held != cfg.HoldConns {
		t.Errorf("hold check: %+v", h)
	}
	if !strings.Contains(report.String(), "targets") {
		t.Errorf("report lacks the targets section")
	}
}

func TestQuantile(t *testing.T) {
	s := make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}} {
		if got := quantile(s, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if median([]float64{3, 1, 2, 4}) != 2.5 {
		t.Errorf("median")
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--quick", "--rounds", "2"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Quick || cfg.Rounds != 2 || cfg.Duration != QuickConfig().Duration {
		t.Errorf("quick with rounds override: %+v", cfg)
	}
	if _, err := parseFlags([]string{"--rounds", "0"}, &bytes.Buffer{}); err == nil {
		t.Error("--rounds 0 accepted")
	}
	cfg, err = parseFlags([]string{"--baseline-bin", "/old/kafka-proxy", "--variants", "proxy,proxy-base,proxy-tls"}, &bytes.Buffer{})
	if err != nil || cfg.BaselineBin != "/old/kafka-proxy" || !cfg.runs("latency", baseProxied) || cfg.runs("latency", forward) {
		t.Errorf("--baseline-bin with --variants: %+v, %v", cfg, err)
	}
	if _, err := parseFlags([]string{"--variants", "proxy,nope"}, &bytes.Buffer{}); err == nil {
		t.Error("--variants nope accepted")
	}
}
