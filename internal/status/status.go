// Package status serves the proxy's status page: what it proxies, how
// each broker was last reached, its traffic and latency per API key,
// authentications and denials, and the effective configuration with
// secrets redacted. Plain HTML with embedded styles, no scripts: it works
// with JavaScript off and refreshes itself.
package status

import (
	"cmp"
	"embed"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

//go:embed page.html
var assets embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"ms": func(s float64) string {
		if math.IsNaN(s) {
			return "–"
		}
		return strconv.FormatFloat(s*1000, 'f', 2, 64) + " ms"
	},
	"rate": func(r float64) string {
		if math.IsNaN(r) {
			return "–"
		}
		return strconv.FormatFloat(r, 'f', 1, 64)
	},
	"ago": func(now, t time.Time) string {
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
}).ParseFS(assets, "page.html"))

// Broker is one broker as the page lists it.
type Broker struct {
	NodeID     int32 // -1 until a response named it
	Upstream   string
	Listener   string // the local listener, "" for one served elsewhere
	Advertised string
	Dialled    bool      // LastDial and Failure are set
	LastDial   time.Time // when the proxy last dialled it
	Failure    string    // why that dial failed, "" if it did not
}

// Source is what the page shows.
type Source struct {
	Version  string
	Started  time.Time
	Gatherer prometheus.Gatherer
	Brokers  func() []Broker
	// Config is the effective configuration, secrets already redacted.
	Config string
	// Refresh is how often the page reloads itself (default 5 s).
	Refresh time.Duration
	Now     func() time.Time
}

// Handler serves the page.
func Handler(src Source) http.Handler {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Refresh <= 0 {
		src.Refresh = 5 * time.Second
	}
	return &handler{src: src}
}

type handler struct {
	src Source

	mu     sync.Mutex
	prevAt time.Time
	prev   map[string]float64 // requests per API key at prevAt
	rates  map[string]float64 // requests per second over the last interval
}

// view is the page's data.
type view struct {
	Version   string
	Uptime    time.Duration
	Now       time.Time
	Refresh   int
	Brokers   []brokerView
	Keys      []keyView
	Counts    []countTable
	Config    string
	Requests  float64
	OpenConns float64
}

type brokerView struct {
	Broker
	Open float64
}

type keyView struct {
	Key      string
	Requests float64
	Rate     float64
	P50, P99 float64
}

// countTable is one counter broken down by a label or two.
type countTable struct {
	Title, Columns string
	Rows           []countRow
}

type countRow struct {
	Label string
	Value float64
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v, err := h.view()
	if err != nil {
		http.Error(w, "metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page loads nothing from anywhere, not even from here.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = page.Execute(w, v)
}

func (h *handler) view() (view, error) {
	now := h.src.Now()
	families, err := h.src.Gatherer.Gather()
	if err != nil {
		return view{}, err
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	v := view{Version: h.src.Version, Uptime: now.Sub(h.src.Started).Round(time.Second), Now: now,
		Refresh: int(h.src.Refresh / time.Second), Config: h.src.Config}

	open := sumBy(byName["proxy_opened_connections"], "broker")
	for _, b := range h.src.Brokers() {
		v.Brokers = append(v.Brokers, brokerView{Broker: b, Open: open[b.Upstream]})
		v.OpenConns += open[b.Upstream]
	}

	hists := histogramsBy(byName["proxy_request_duration_seconds"], "api_key")
	counts := map[string]float64{}
	for key, hs := range hists {
		counts[key] = float64(hs.count)
		v.Requests += float64(hs.count)
	}
	rates := h.updateRates(now, counts)
	for key, hs := range hists {
		rate, ok := rates[key]
		if !ok {
			rate = math.NaN()
		}
		v.Keys = append(v.Keys, keyView{Key: key, Requests: float64(hs.count), Rate: rate, P50: hs.quantile(0.5), P99: hs.quantile(0.99)})
	}
	slices.SortFunc(v.Keys, func(a, b keyView) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), strings.Compare(a.Key, b.Key))
	})

	for _, c := range []struct{ title, metric, columns string }{
		{"Upstream authentications", "proxy_upstream_auth_total", "mechanism result"},
		{"Client authentications", "proxy_client_auth_total", "mechanism result"},
		{"ACL denials", "proxy_acl_denials_total", "resource_type"},
		{"Connections refused at accept", "proxy_connections_rejected_total", "reason"},
		{"Connections closed", "proxy_connections_closed_total", "reason"},
		{"Failed dials", "proxy_upstream_dial_errors_total", "broker reason"},
	} {
		t := countTable{Title: c.title, Columns: c.columns}
		for label, n := range sumBy(byName[c.metric], strings.Fields(c.columns)...) {
			t.Rows = append(t.Rows, countRow{label, n})
		}
		slices.SortFunc(t.Rows, func(a, b countRow) int { return strings.Compare(a.Label, b.Label) })
		v.Counts = append(v.Counts, t)
	}
	return v, nil
}

// updateRates turns request counts into rates over the time since the
// previous page view (at least a second ago, else the previous rates).
func (h *handler) updateRates(now time.Time, counts map[string]float64) map[string]float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.prev != nil && now.Sub(h.prevAt) < time.Second {
		return h.rates
	}
	if h.prev != nil {
		dt := now.Sub(h.prevAt).Seconds()
		h.rates = map[string]float64{}
		for key, n := range counts {
			h.rates[key] = max(0, n-h.prev[key]) / dt
		}
	}
	h.prev, h.prevAt = counts, now
	return h.rates
}

// sumBy adds up a counter or gauge family by the values of labels, joined
// with spaces.
func sumBy(f *dto.MetricFamily, labels ...string) map[string]float64 {
	out := map[string]float64{}
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		key := labelKey(m, labels)
		out[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return out
}

func labelKey(m *dto.Metric, labels []string) string {
	key := ""
	for i, l := range labels {
		for _, p := range m.GetLabel() {
			if p.GetName() == l {
				if i > 0 {
					key += " "
				}
				key += p.GetValue()
			}
		}
	}
	return key
}

// hist is a histogram summed over series: cumulative counts per bound.
type hist struct {
	count  uint64
	bounds []float64
	cum    []uint64
}

func histogramsBy(f *dto.MetricFamily, label string) map[string]*hist {
	out := map[string]*hist{}
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		key := labelKey(m, []string{label})
		h := out[key]
		if h == nil {
			h = &hist{}
			out[key] = h
		}
		hm := m.GetHistogram()
		h.count += hm.GetSampleCount()
		for i, b := range hm.GetBucket() {
			if i >= len(h.bounds) {
				h.bounds = append(h.bounds, b.GetUpperBound())
				h.cum = append(h.cum, 0)
			}
			h.cum[i] += b.GetCumulativeCount()
		}
	}
	return out
}

// quantile estimates the q-quantile as Prometheus' histogram_quantile
// does: linear within the bucket it falls in; past the last bound, that
// bound.
func (h *hist) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for i, b := range h.bounds {
		if float64(h.cum[i]) >= rank {
			if math.IsInf(b, 1) {
				return lower
			}
			in := float64(h.cum[i] - below)
			if in == 0 {
				return b
			}
			return lower + (b-lower)*(rank-float64(below))/in
		}
		lower, below = b, h.cum[i]
	}
	return lower
}
