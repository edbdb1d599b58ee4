// Package metrics exports the proxy's Prometheus metrics. Collectors are
// registered on an injected Registerer, so tests and embedders each get
// their own.
package metrics

import (
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// latencyBuckets span a produce on loopback (sub-millisecond) to a
// long-poll Fetch or a JoinGroup rebalance (tens of seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds every collector of one proxy.
type Metrics struct {
	opened      *prometheus.GaugeVec
	connections *prometheus.CounterVec
	requests    *prometheus.CounterVec
	reqBytes    *prometheus.CounterVec
	respBytes   *prometheus.CounterVec
	auth        *prometheus.CounterVec
	clientAuth  *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	closed      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	dialTime    *prometheus.HistogramVec
	dialErrors  *prometheus.CounterVec
	build       *prometheus.GaugeVec
	aclDenials  *prometheus.CounterVec

	mu      sync.Mutex
	brokers map[string]*Broker
	dials   map[string]DialState // the last dial of each broker, for the status page
}

// DialState is how the last dial of a broker went.
type DialState struct {
	At      time.Time
	Took    time.Duration
	Failure string // "" when it succeeded, else a proxy_upstream_dial_errors_total reason
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		opened: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "proxy_opened_connections", Help: "Client connections open now, by broker.",
		}, []string{"broker"}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_connections_total", Help: "Client connections accepted, by broker.",
		}, []string{"broker"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_requests_total", Help: "Requests forwarded, by broker, API key and version.",
		}, []string{"broker", "api_key", "api_version"}),
		reqBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_requests_bytes", Help: "Request bytes forwarded to the broker (frames, size prefix included).",
		}, []string{"broker"}),
		respBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_responses_bytes", Help: "Response bytes sent to clients (frames, size prefix included).",
		}, []string{"broker"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_upstream_auth_total", Help: "Upstream SASL authentications by broker, mechanism and result (success, failure, reauthenticated).",
		}, []string{"broker", "mechanism", "result"}),
		clientAuth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_client_auth_total", Help: "Client SASL authentications at the proxy's listeners (--auth-local-enable), by listener, mechanism and result (success, failure, reauthenticated).",
		}, []string{"listener", "mechanism", "result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_connections_rejected_total", Help: "Client connections refused at accept, by listener and reason (ip-denied, ip-not-allowed, max-connections, max-connections-per-ip).",
		}, []string{"listener", "reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_connections_closed_total", Help: "Client connections ended, by broker and reason (client, broker, shutdown, listener-removed, timeout, no-mapping, error; before the session: refused, dial-failed, auth-failed).",
		}, []string{"broker", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "proxy_request_duration_seconds", Help: "From a request read from the client to its response written back, by broker and API key name.", Buckets: latencyBuckets,
		}, []string{"broker", "api_key"}),
		dialTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "proxy_upstream_dial_duration_seconds", Help: "Dials to a usable broker connection (TCP, TLS, SASL), by broker; failed dials included.", Buckets: latencyBuckets,
		}, []string{"broker"}),
		dialErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_upstream_dial_errors_total", Help: "Failed broker dials, by broker and reason (timeout, refused, dns, tls, auth, other).",
		}, []string{"broker", "reason"}),
		aclDenials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_acl_denials_total", Help: "Resources of client requests the ACLs denied, by resource type (TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN).",
		}, []string{"resource_type"}),
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "proxy_build_info", Help: "Always 1: the running binary's version and Go version.",
		}, []string{"version", "go_version"}),
		brokers: map[string]*Broker{},
		dials:   map[string]DialState{},
	}
	reg.MustRegister(m.opened, m.connections, m.requests, m.reqBytes, m.respBytes, m.auth, m.clientAuth, m.rejected,
		m.closed, m.duration, m.dialTime, m.dialErrors, m.build, m.aclDenials)
	return m
}

// ACLDenied counts one resource the ACLs denied.
func (m *Metrics) ACLDenied(resourceType string) {
	m.aclDenials.WithLabelValues(resourceType).Inc()
}

// SetVersion records the binary's version in proxy_build_info.
func (m *Metrics) SetVersion(version string) {
	m.build.Reset()
	m.build.WithLabelValues(version, runtime.Version()).Set(1)
}

// Dialed implements upstream.Hooks.
func (m *Metrics) Dialed(broker string, took time.Duration, failure string) {
	m.dialTime.WithLabelValues(broker).Observe(took.Seconds())
	if failure != "" {
		m.dialErrors.WithLabelValues(broker, failure).Inc()
	}
	m.mu.Lock()
	m.dials[broker] = DialState{At: time.Now(), Took: took, Failure: failure}
	m.mu.Unlock()
}

// LastDial is how the last dial of broker went, if there was one.
func (m *Metrics) LastDial(broker string) (DialState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dials[broker]
	return d, ok
}

// Broker returns the collectors of one broker, created once, so the
// per-request path does no label lookups.
func (m *Metrics) Broker(broker string) *Broker {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.brokers[broker]; ok {
		return b
	}
	b := &Broker{
		m:         m,
		name:      broker,
		opened:    m.opened.WithLabelValues(broker),
		accepted:  m.connections.WithLabelValues(broker),
		reqBytes:  m.reqBytes.WithLabelValues(broker),
		respBytes: m.respBytes.WithLabelValues(broker),
		closedBy:  map[string]prometheus.Counter{},
	}
	m.brokers[broker] = b
	return b
}

// AuthSucceeded, AuthFailed and Reauthenticated implement upstream.Hooks.
func (m *Metrics) AuthSucceeded(broker, mech string) {
	m.auth.WithLabelValues(broker, mech, "success").Inc()
}

// AuthFailed counts a failed upstream authentication.
func (m *Metrics) AuthFailed(broker, mech string) {
	m.auth.WithLabelValues(broker, mech, "failure").Inc()
}

// Reauthenticated counts a KIP-368 session renewal.
func (m *Metrics) Reauthenticated(broker, mech string) {
	m.auth.WithLabelValues(broker, mech, "reauthenticated").Inc()
}

// ClientAuth implements clientauth.Hooks.
func (m *Metrics) ClientAuth(listener, mech, result string) {
	m.clientAuth.WithLabelValues(listener, mech, result).Inc()
}

// Rejected implements connfilter.Hooks.
func (m *Metrics) Rejected(listener, reason string) {
	m.rejected.WithLabelValues(listener, reason).Inc()
}

// Broker is the per-broker view; it implements proxy.Metrics.
type Broker struct {
	m         *Metrics
	name      string
	opened    prometheus.Gauge
	accepted  prometheus.Counter
	reqBytes  prometheus.Counter
	respBytes prometheus.Counter
	requests  sync.Map // int32(key<<16|version) -> prometheus.Counter
	latency   sync.Map // int16 key -> prometheus.Observer

	mu       sync.Mutex
	closedBy map[string]prometheus.Counter
}

// Opened counts a new client connection.
func (b *Broker) Opened() {
	b.opened.Inc()
	b.accepted.Inc()
}

// Closed counts a client connection that ended, and why (a short word:
// see proxy_connections_closed_total).
func (b *Broker) Closed(reason string) {
	b.opened.Dec()
	b.mu.Lock()
	c, ok := b.closedBy[reason]
	if !ok {
		c = b.m.closed.WithLabelValues(b.name, reason)
		b.closedBy[reason] = c
	}
	b.mu.Unlock()
	c.Inc()
}

// Answered observes how long a request took, from its read from the
// client to its response written back.
func (b *Broker) Answered(key int16, took time.Duration) {
	name := kmsg.NameForKey(key)
	if name == "" {
		key, name = -1, "Unknown" // one series for every key kmsg does not know
	}
	o, ok := b.latency.Load(key)
	if !ok {
		o, _ = b.latency.LoadOrStore(key, b.m.duration.WithLabelValues(b.name, name))
	}
	o.(prometheus.Observer).Observe(took.Seconds())
}

// Request counts one forwarded request.
func (b *Broker) Request(key, version int16, bytes int) {
	id := int32(key)<<16 | int32(uint16(version))
	c, ok := b.requests.Load(id)
	if !ok {
		c, _ = b.requests.LoadOrStore(id, b.m.requests.WithLabelValues(b.name, strconv.Itoa(int(key)), strconv.Itoa(int(version))))
	}
	c.(prometheus.Counter).Inc()
	b.reqBytes.Add(float64(bytes))
}

// Response counts one response sent to the client.
func (b *Broker) Response(bytes int) { b.respBytes.Add(float64(bytes)) }
