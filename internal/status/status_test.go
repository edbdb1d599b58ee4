package status

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kafka-proxy/kafka-proxy/internal/metrics"
)

func get(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q: the page must load nothing", csp)
	}
	return rec.Body.String()
}

// TestPage: the page lists every broker with its state, the requests by
// API key with their rate over the time between two views, the counters,
// and the configuration it is given; it refreshes itself and has no
// script or remote asset.
func TestPage(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	b0 := m.Broker("kafka-0:9092")
	b0.Opened()
	for range 10 {
		b0.Answered(0, 2*time.Millisecond)
	}
	m.Dialed("kafka-0:9092", time.Millisecond, "")
	m.Dialed("kafka-1:9092", time.Second, "tls")
	m.AuthFailed("kafka-1:9092", "SCRAM-SHA-512")
	m.ACLDenied("TOPIC")
	now := time.Unix(10_000, 0)
	brokers := func() []Broker {
		var out []Broker
		for i, up := range []string{"kafka-0:9092", "kafka-1:9092", "kafka-2:9092"} {
			b := Broker{NodeID: int32(i), Upstream: up, Listener: "127.0.0.1:3240" + string(rune('0'+i)), Advertised: "127.0.0.1:3240" + string(rune('0'+i))}
			if d, ok := m.LastDial(up); ok {
				b.Dialled, b.LastDial, b.Failure = true, now.Add(-3*time.Second), d.Failure
			}
			out = append(out, b)
		}
		return out
	}
	h := Handler(Source{Version: "v9.9.9", Started: now.Add(-time.Hour), Gatherer: reg, Brokers: brokers,
		Config: "kafka:\n  sasl:\n    password: '[redacted]'\n", Now: func() time.Time { return now }})
	first := get(t, h)
	for _, want := range []string{"v9.9.9", "1h0m0s", `http-equiv="refresh" content="5"`,
		"kafka-0:9092", "kafka-1:9092", "kafka-2:9092", "reachable", "failed: tls", "not dialled yet",
		`<b id="broker-count">3</b>`, `<b id="open-connections">1</b>`, "Produce", "[redacted]", "TOPIC", "SCRAM-SHA-512 failure"} {
		if !strings.Contains(first, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "@import"} {
		if strings.Contains(first, bad) {
			t.Errorf("the page has %s", bad)
		}
	}

	// Two seconds and 20 produce requests later, 10 per second.
	for range 20 {
		b0.Answered(0, 2*time.Millisecond)
	}
	now = now.Add(2 * time.Second)
	second := get(t, h)
	if !strings.Contains(second, `<td>Produce</td><td class="n">30</td><td class="n">10.0</td>`) {
		t.Errorf("the Produce row does not show 30 answered at 10.0 per second:\n%s", second)
	}
}

// TestQuantile estimates as histogram_quantile does.
func TestQuantile(t *testing.T) {
	h := &hist{count: 100, bounds: []float64{0.001, 0.01, 0.1, math.Inf(1)}, cum: []uint64{50, 90, 100, 100}}
	for _, c := range []struct{ q, want float64 }{{0.5, 0.001}, {0.7, 0.0055}, {0.99, 0.091}} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	over := &hist{count: 10, bounds: []float64{0.001, math.Inf(1)}, cum: []uint64{0, 10}}
	if got := over.quantile(0.99); got != 0.001 {
		t.Errorf("past the last bound: %v, want the last finite bound", got)
	}
	if !math.IsNaN((&hist{}).quantile(0.5)) {
		t.Error("no samples: want NaN")
	}
}
