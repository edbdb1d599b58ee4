package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func testRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "proxy_requests_total", Help: "h"}, []string{"broker"})
	reg.MustRegister(c)
	c.WithLabelValues("kafka-0:9092").Add(3)
	return reg
}

func TestHandler(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	cfg := config.HTTP{HealthPath: "/healthz", ReadyPath: "/readyz", MetricsPath: "/prom"}
	h := Handler(cfg, testRegistry(t), func(context.Context) error {
		if ready.Load() {
			return nil
		}
		return errors.New("down")
	}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "status page") }))

	cases := []struct {
		path     string
		code     int
		contains string
	}{
		{"/healthz", 200, "OK"},
		{"/readyz", 200, "OK"},
		{"/prom", 200, `proxy_requests_total{broker="kafka-0:9092"} 3`},
		{"/health", 404, ""}, // the default paths are not served when others are configured
		{"/metrics", 404, ""},
		{"/healthz/", 404, ""}, // exact paths, no subtrees
		{"/", 200, "status page"},
		{"/index.html", 404, ""},
	}
	for _, c := range cases {
		code, body := get(t, h, c.path)
		if code != c.code || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s = %d %q, want %d containing %q", c.path, code, body, c.code, c.contains)
		}
	}
}

func TestReadyNotReady(t *testing.T) {
	d := config.Default().HTTP
	h := Handler(d, prometheus.NewRegistry(), func(context.Context) error {
		return errors.New("dial broker b:9092: tls: failed to verify certificate")
	}, nil)
	if code, body := get(t, h, "/ready"); code != http.StatusServiceUnavailable || body != "no broker reachable: dial broker b:9092: tls: failed to verify certificate\n" {
		t.Errorf("GET /ready = %d %q, want 503", code, body)
	}
	// Liveness does not depend on the brokers: restarting the proxy would
	// not bring them back.
	if code, _ := get(t, h, "/health"); code != http.StatusOK {
		t.Errorf("GET /health = %d while not ready", code)
	}
}

// TestHandlerOddPaths: paths an http.ServeMux would reject by panicking
// (pattern syntax, duplicates) are served as configured; validation
// reports the duplicate, the first endpoint wins.
func TestHandlerOddPaths(t *testing.T) {
	cfg := config.HTTP{HealthPath: "/h{x", ReadyPath: "/same", MetricsPath: "/same"}
	h := Handler(cfg, prometheus.NewRegistry(), func(context.Context) error { return nil }, nil)
	if code, body := get(t, h, "/h%7Bx"); code != 200 || body != "OK\n" {
		t.Errorf("GET /h{x = %d %q", code, body)
	}
	if code, body := get(t, h, "/same"); code != 200 || body != "OK\n" {
		t.Errorf("GET /same = %d %q, want the ready endpoint", code, body)
	}
}

// TestReadyCache: probes within a second share one check, so a probe
// storm does not become a dial storm against the brokers.
func TestReadyCache(t *testing.T) {
	now := time.Unix(1000, 0)
	var checks atomic.Int32
	var answer atomic.Bool
	c := &readyCache{
		check: func(context.Context) error {
			checks.Add(1)
			if answer.Load() {
				return nil
			}
			return errors.New("down")
		},
		now: func() time.Time { return now },
	}
	answer.Store(true)
	for range 5 {
		if c.ready(context.Background()) != nil {
			t.Fatal("not ready")
		}
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("%d checks for 5 probes within a second, want 1", n)
	}
	answer.Store(false)
	now = now.Add(999 * time.Millisecond)
	if c.ready(context.Background()) != nil || checks.Load() != 1 {
		t.Fatalf("re-checked before a second passed (%d checks)", checks.Load())
	}
	now = now.Add(time.Millisecond)
	if c.ready(context.Background()) == nil || checks.Load() != 2 {
		t.Fatalf("not re-checked after a second (%d checks)", checks.Load())
	}
	// A failed answer is cached too.
	answer.Store(true)
	if c.ready(context.Background()) == nil || checks.Load() != 2 {
		t.Fatalf("failure not cached (%d checks)", checks.Load())
	}
}

// TestReadyCheckContext: the shared check gets a bounded context that a
// prober hanging up does not cancel.
func TestReadyCheckContext(t *testing.T) {
	var deadline time.Duration
	var cancelled bool
	c := &readyCache{
		check: func(ctx context.Context) error {
			d, ok := ctx.Deadline()
			if ok {
				deadline = time.Until(d)
			}
			cancelled = ctx.Err() != nil
			return nil
		},
		now: time.Now,
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c.ready(ctx) != nil {
		t.Error("a cancelled prober made the check fail")
	}
	if cancelled || deadline <= 0 || deadline > 2*time.Second {
		t.Errorf("check context: cancelled=%v deadline in %v, want live with a deadline within 2s", cancelled, deadline)
	}
}

func TestPprofHandler(t *testing.T) {
	h := PprofHandler()
	for _, c := range []struct{ path, contains string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"/debug/pprof/cmdline", ""},
		{"/debug/pprof/symbol", "num_symbols"},
	} {
		code, body := get(t, h, c.path)
		if code != http.StatusOK || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s = %d, body contains %q: %v", c.path, code, c.contains, strings.Contains(body, c.contains))
		}
	}
	if code, _ := get(t, h, "/metrics"); code != http.StatusNotFound {
		t.Errorf("pprof handler serves /metrics: %d", code)
	}
}

func TestStartShutdown(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Start("127.0.0.1:0", Handler(config.Default().HTTP, testRegistry(t), func(context.Context) error { return nil }, nil), log)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "proxy_requests_total") {
		t.Errorf("GET /metrics = %d %s", resp.StatusCode, body)
	}

	// The address is taken now: a second server must say which address.
	if _, err := Start(s.Addr().String(), http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "http listen "+s.Addr().String()) {
		t.Errorf("Start on a busy address = %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("still accepting after Shutdown")
	}
}
