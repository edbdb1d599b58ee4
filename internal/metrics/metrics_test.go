package metrics

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrape gathers reg the way Prometheus does and renders every series as
// `type name{label="value",...} value`, sorted. (prometheus/testutil would
// do this, but it needs a module go.mod does not list.)
func scrape(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out = append(out, fmt.Sprintf("%s %s{%s} %v", strings.ToLower(mf.GetType().String()), mf.GetName(), strings.Join(labels, ","), v))
		}
	}
	slices.Sort(out)
	return out
}

// value is one series of scrape's output, 0 if absent.
func value(t *testing.T, reg prometheus.Gatherer, series string) float64 {
	t.Helper()
	for _, s := range scrape(t, reg) {
		if _, rest, ok := strings.Cut(s, " "); ok && strings.HasPrefix(rest, series+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(rest, series+" "), &v)
			return v
		}
	}
	return 0
}

func count(t *testing.T, reg prometheus.Gatherer, name string) int {
	n := 0
	for _, s := range scrape(t, reg) {
		if strings.Contains(s, " "+name+"{") {
			n++
		}
	}
	return n
}

// TestExposition checks the names, labels and values an operator's
// dashboards and alerts rely on, exactly as Prometheus scrapes them.
func TestExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	b0, b1 := m.Broker("kafka-0:9092"), m.Broker("kafka-1:9092")
	b0.Opened()
	b0.Opened()
	b0.Closed("broker")
	b1.Opened()
	b0.Request(3, 12, 100)
	b0.Request(3, 12, 50)
	b0.Request(18, 3, 10)
	b1.Request(0, 11, 1000)
	b0.Response(200)
	b1.Response(7)
	m.AuthSucceeded("kafka-0:9092", "PLAIN")
	m.AuthFailed("kafka-0:9092", "PLAIN")
	m.Reauthenticated("kafka-1:9092", "SCRAM-SHA-512")
	b0.Answered(0, 3*time.Millisecond)
	b0.Answered(0, 40*time.Millisecond)
	b0.Answered(1, time.Second)
	b0.Answered(30000, time.Millisecond) // a key kmsg does not know: one bounded series
	b0.Answered(31000, time.Millisecond)
	m.Dialed("kafka-0:9092", 2*time.Millisecond, "")
	m.Dialed("kafka-0:9092", 5*time.Second, "timeout")
	m.SetVersion("v1.2.3")

	want := []string{
		fmt.Sprintf(`gauge proxy_build_info{go_version=%q,version="v1.2.3"} 1`, runtime.Version()),
		`counter proxy_connections_closed_total{broker="kafka-0:9092",reason="broker"} 1`,
		`histogram proxy_request_duration_seconds{api_key="Fetch",broker="kafka-0:9092"} 1`,
		`histogram proxy_request_duration_seconds{api_key="Produce",broker="kafka-0:9092"} 2`,
		`histogram proxy_request_duration_seconds{api_key="Unknown",broker="kafka-0:9092"} 2`,
		`histogram proxy_upstream_dial_duration_seconds{broker="kafka-0:9092"} 2`,
		`counter proxy_upstream_dial_errors_total{broker="kafka-0:9092",reason="timeout"} 1`,
		`counter proxy_connections_total{broker="kafka-0:9092"} 2`,
		`counter proxy_connections_total{broker="kafka-1:9092"} 1`,
		`counter proxy_requests_bytes{broker="kafka-0:9092"} 160`,
		`counter proxy_requests_bytes{broker="kafka-1:9092"} 1000`,
		`counter proxy_requests_total{api_key="0",api_version="11",broker="kafka-1:9092"} 1`,
		`counter proxy_requests_total{api_key="18",api_version="3",broker="kafka-0:9092"} 1`,
		`counter proxy_requests_total{api_key="3",api_version="12",broker="kafka-0:9092"} 2`,
		`counter proxy_responses_bytes{broker="kafka-0:9092"} 200`,
		`counter proxy_responses_bytes{broker="kafka-1:9092"} 7`,
		`counter proxy_upstream_auth_total{broker="kafka-0:9092",mechanism="PLAIN",result="failure"} 1`,
		`counter proxy_upstream_auth_total{broker="kafka-0:9092",mechanism="PLAIN",result="success"} 1`,
		`counter proxy_upstream_auth_total{broker="kafka-1:9092",mechanism="SCRAM-SHA-512",result="reauthenticated"} 1`,
		`gauge proxy_opened_connections{broker="kafka-0:9092"} 1`,
		`gauge proxy_opened_connections{broker="kafka-1:9092"} 1`,
	}
	slices.Sort(want)
	if got := scrape(t, reg); !slices.Equal(got, want) {
		t.Errorf("scraped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestKeyVersionLabels: the packed key/version id must not mix up keys and
// versions, including versions with the sign bit set.
func TestKeyVersionLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := New(reg).Broker("b:1")
	calls := []struct{ key, version int16 }{{1, 2}, {2, 1}, {0, 258}, {1, 2}, {1, -1}, {2, -1}, {32767, 0}}
	for _, c := range calls {
		b.Request(c.key, c.version, 1)
	}
	for _, c := range []struct {
		key, version string
		want         float64
	}{{"1", "2", 2}, {"2", "1", 1}, {"0", "258", 1}, {"1", "-1", 1}, {"2", "-1", 1}, {"32767", "0", 1}} {
		if got := value(t, reg, fmt.Sprintf(`proxy_requests_total{api_key=%q,api_version=%q,broker="b:1"}`, c.key, c.version)); got != c.want {
			t.Errorf("proxy_requests_total{api_key=%s,api_version=%s} = %v, want %v", c.key, c.version, got, c.want)
		}
	}
	if n := count(t, reg, "proxy_requests_total"); n != 6 {
		t.Errorf("%d series, want 6", n)
	}
}

func TestBrokerCached(t *testing.T) {
	m := New(prometheus.NewRegistry())
	first := m.Broker("a:1")
	if m.Broker("a:1") != first {
		t.Error("Broker returns a new value for a known broker")
	}
	if m.Broker("a:1") == m.Broker("b:1") {
		t.Error("two brokers share one Broker")
	}
}

// TestRequestDoesNotAllocate: Request, Response, Opened and Closed run per
// request or connection on the hot path.
func TestRequestDoesNotAllocate(t *testing.T) {
	b := New(prometheus.NewRegistry()).Broker("kafka-0:9092")
	b.Request(3, 12, 100) // first use creates the series
	b.Request(1, 16, 100)
	if n := testing.AllocsPerRun(1000, func() {
		b.Request(3, 12, 100)
		b.Request(1, 16, 4096)
		b.Response(100)
	}); n != 0 {
		t.Errorf("Request/Response: %v allocs per run, want 0", n)
	}
	b.Answered(1, time.Millisecond)
	b.Closed("client")
	if n := testing.AllocsPerRun(1000, func() { b.Answered(1, time.Millisecond); b.Answered(3, time.Millisecond) }); n != 0 {
		t.Errorf("Answered: %v allocs per run, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { b.Opened(); b.Closed("client") }); n != 0 {
		t.Errorf("Opened/Closed: %v allocs per run, want 0", n)
	}
}

// TestConcurrentRequests: sessions of one broker count at once, each
// creating series on first use; no count may be lost. Run with -race.
func TestConcurrentRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	const goroutines, rounds, keys = 16, 200, 8
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			b := m.Broker("b:1")
			for i := range rounds {
				b.Request(int16(i%keys), 1, 1)
			}
		})
	}
	wg.Wait()
	for k := range keys {
		want := float64(goroutines * rounds / keys)
		if got := value(t, reg, fmt.Sprintf(`proxy_requests_total{api_key="%d",api_version="1",broker="b:1"}`, k)); got != want {
			t.Errorf("key %d: %v, want %v", k, got, want)
		}
	}
	if got := value(t, reg, `proxy_requests_bytes{broker="b:1"}`); got != goroutines*rounds {
		t.Errorf("bytes %v, want %d", got, goroutines*rounds)
	}
}

func BenchmarkRequest(b *testing.B) {
	br := New(prometheus.NewRegistry()).Broker("kafka-0:9092")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Request(1, 16, 100)
		}
	})
}

func BenchmarkAnswered(b *testing.B) {
	br := New(prometheus.NewRegistry()).Broker("kafka-0:9092")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Answered(0, 3*time.Millisecond)
		}
	})
}
