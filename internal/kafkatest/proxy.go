package kafkatest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/logbuf"
	"github.com/kafka-proxy/kafka-proxy/internal/metrics"
	"github.com/kafka-proxy/kafka-proxy/internal/server"
)

// Proxy is a kafka-proxy running in the test process.
type Proxy struct {
	Server    *server.Server
	Config    config.Config
	Registry  *prometheus.Registry
	Logs      *LogBuffer
	Bootstrap string // the first listener's address

	violations atomic.Int64
	mu         sync.Mutex
	refused    []string
}

// StartProxy runs the proxy with every broker mapped to a 127.0.0.1 port
// the kernel picks. mutate may change the configuration before start (for
// example to map only some brokers); the proxy is shut down at test end.
func StartProxy(t testing.TB, brokers []string, mutate func(*config.Config)) *Proxy {
	t.Helper()
	cfg := config.Default()
	for _, b := range brokers {
		cfg.Proxy.BootstrapServers = append(cfg.Proxy.BootstrapServers, config.Mapping{Upstream: b, Listen: "127.0.0.1:0"})
	}
	cfg.HTTP.Disable = true
	cfg.Kafka.DialTimeout = 5 * time.Second
	cfg.Proxy.DrainTimeout = 10 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("proxy config: %v", err)
	}
	logs := &LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	srv, err := server.New(cfg, log, metrics.New(reg))
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("proxy start: %v", err)
	}
	p := &Proxy{Server: srv, Config: cfg, Registry: reg, Logs: logs}
	p.Bootstrap = srv.Listeners()[0].Addr.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("proxy log:\n%s", logs.String())
		}
	})
	return p
}

// IsProxyAddr reports whether addr is one of the proxy's listeners.
func (p *Proxy) IsProxyAddr(addr string) bool {
	for _, l := range p.Server.Listeners() {
		if l.Addr.String() == addr {
			return true
		}
	}
	return false
}

// DialContext dials only proxy listeners: a client given this dialer fails
// loudly if any address it learnt bypasses the proxy.
func (p *Proxy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if !p.IsProxyAddr(addr) {
		p.violations.Add(1)
		p.mu.Lock()
		p.refused = append(p.refused, addr)
		p.mu.Unlock()
		return nil, fmt.Errorf("kafkatest: refusing to dial %s: not a proxy address (a broker address leaked to the client)", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Dial is DialContext for clients whose dialer takes no context.
func (p *Proxy) Dial(network, addr string) (net.Conn, error) {
	return p.DialContext(context.Background(), network, addr)
}

// CheckNoBypass fails the test if any client tried a non-proxy address.
func (p *Proxy) CheckNoBypass(t testing.TB) {
	t.Helper()
	if n := p.violations.Load(); n > 0 {
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Errorf("clients tried %d non-proxy addresses: %s", n, strings.Join(p.refused, ", "))
	}
}

// LogBuffer collects log output safely from many goroutines.
type LogBuffer = logbuf.Buffer

// Client is a franz-go client that can reach only the proxy's listeners;
// it is closed when the test ends.
func (p *Proxy) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(p.Bootstrap),
		kgo.Dialer(p.DialContext),
		kgo.RetryTimeout(30 * time.Second),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// MetricSum adds up the proxy's metric name over the series whose labels
// match (every series if match is nil); for a histogram, its counts.
func (p *Proxy) MetricSum(t testing.TB, name string, match func(labels map[string]string) bool) float64 {
	t.Helper()
	mfs, err := p.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if match != nil && !match(labels) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}
