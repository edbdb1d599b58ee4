// Package admin serves the operator's HTTP endpoints: liveness, readiness,
// Prometheus metrics and, on its own address, pprof.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// ReadyFunc reports nil when the proxy can serve clients, else why not.
type ReadyFunc func(ctx context.Context) error

// Handler builds the admin endpoints. Paths match exactly, as configured:
// an http.ServeMux would treat them as patterns, so a path such as
// "/health{x" or two endpoints on one path would panic at start instead
// of being served or rejected by config validation.
// page, if set, is served at "/" (the status page).
func Handler(cfg config.HTTP, gatherer prometheus.Gatherer, ready ReadyFunc, page http.Handler) http.Handler {
	cache := &readyCache{check: ready, now: time.Now}
	routes := map[string]http.Handler{}
	add := func(path string, h http.Handler) {
		if _, dup := routes[path]; !dup { // the first wins, as validation reports
			routes[path] = h
		}
	}
	add(cfg.HealthPath, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "OK")
	}))
	add(cfg.ReadyPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cache.ready(r.Context()); err != nil {
			http.Error(w, "no broker reachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	}))
	add(cfg.MetricsPath, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	if page != nil {
		add("/", page)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := routes[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// readyCache spares the brokers a dial per probe: the answer is reused for
// a second.
type readyCache struct {
	check ReadyFunc
	now   func() time.Time
	mu    sync.Mutex
	at    time.Time
	err   error
}

func (c *readyCache) ready(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.now().Sub(c.at) < time.Second {
		return c.err
	}
	// The answer is shared with other probes, so it must not depend on
	// this one: a prober that hangs up mid-check would otherwise cache
	// "not ready" for everyone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	c.err = c.check(ctx)
	c.at = c.now()
	return c.err
}

// PprofHandler serves net/http/pprof.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Server is a started HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Start listens on addr and serves h in the background.
func Start(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	s := &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "addr", addr, "err", err)
		}
	}()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the server gracefully.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
