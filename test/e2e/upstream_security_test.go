package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Secure upstreams: the clients still speak plaintext to the proxy, while
// the proxy speaks mTLS, or SCRAM-SHA-512 over TLS with broker sessions
// that expire every sessionLifetime, to the demo's brokers. The brokers'
// fronts close a connection whose session expired (as Apache Kafka does), so
// the clients only pass if the proxy re-authenticates (KIP-368) under them.
const (
	sessionLifetime = 3 * time.Second
	// clientPace spreads each client's produce over this long, and keeps its
	// consumer fetching this long after the last record: every long-lived
	// connection then outlives two session lifetimes.
	clientPace = 7 * time.Second
	// maxFetchWait is the longest fetch long poll of the clients (kafkajs'
	// maxWaitTimeInMs); a renewal waits behind the fetch in flight.
	maxFetchWait = 5 * time.Second
)

type secureClient struct {
	name string
	run  func(t *testing.T, s *suite, tg *target)
}

var secureClients = []secureClient{
	{"kcat", func(t *testing.T, s *suite, tg *target) { kcatFlow(t, s, tg, lookKcat(t)) }},
	{"confluent-kafka-python", confluentClient},
	{"kafka-python", kafkaPythonClient},
	{"kafkajs", kafkaJSClient},
}

func TestUpstreamMTLS(t *testing.T) {
	testSecureUpstream(t, "mtls", 0, 0)
}

func TestUpstreamSCRAM512TLSReauth(t *testing.T) {
	testSecureUpstream(t, "scram-sha-512-tls", sessionLifetime, clientPace)
}

// testSecureUpstream runs every client, one after the other, through one
// demo in mode, then checks the proxy's metrics and the brokers' counts.
func testSecureUpstream(t *testing.T, mode string, lifetime, pace time.Duration) {
	s := suiteFor(t)
	tg, err := s.startTarget(mode, lifetime, pace)
	if err != nil {
		t.Fatalf("start %s demo: %v", mode, err)
	}
	t.Cleanup(func() {
		if err := tg.demo.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("kafka-proxy demo --upstream-security %s output (last 120 lines):\n%s", mode, tg.demo.out.tail(120))
		}
	})
	metricsURL, err := tg.demo.metricsURL()
	if err != nil {
		t.Fatal(err)
	}
	s.checkBrokersUnreachable(t, tg)
	ranAny := false
	for _, c := range secureClients {
		from := len(tg.demo.out.String())
		skipped := false
		ran := t.Run(c.name, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			c.run(t, s, tg)
		})
		// Every connection the client opened is closed (and logged as such)
		// before the next client starts, so the log between the two
		// snapshots is this client's.
		if err := waitNoOpenConnections(metricsURL, 10*time.Second); err != nil {
			t.Fatalf("after %s: %v", c.name, err)
		}
		window := tg.demo.out.String()[from:]
		if warns := proxyWarnings(window); len(warns) > 0 {
			t.Errorf("%s: the proxy logged %d warnings/errors while it ran, first:\n%s", c.name, len(warns), warns[0])
		}
		ranAny = ranAny || !skipped
		if ran && !skipped && lifetime > 0 {
			checkRenewals(t, c.name, parseConnections(window), lifetime)
		}
	}
	if !ranAny {
		t.Skip("no client is installed: " + installHint)
	}

	m, err := scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	auth := m.sum("proxy_upstream_auth_total", "result")
	t.Logf("proxy_upstream_auth_total by result: %v", auth)
	// A renewal abandoned because its client left is not a failure
	// (upstream.ErrRoundTripAborted), so any failure here is real.
	if auth["failure"] != 0 {
		t.Errorf("proxy_upstream_auth_total{result=\"failure\"} = %v, want 0", auth["failure"])
	}
	if auth["success"] == 0 {
		t.Errorf("proxy_upstream_auth_total{result=\"success\"} = 0: the proxy never authenticated to a broker")
	}
	if lifetime > 0 && auth["reauthenticated"] == 0 {
		t.Errorf("proxy_upstream_auth_total{result=\"reauthenticated\"} = 0 with %v broker sessions", lifetime)
	}

	if err := tg.demo.stop(); err != nil {
		t.Fatal(err)
	}
	st, err := tg.demo.brokerStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the brokers saw %v", st)
	for _, k := range []string{"auth_failures", "expired_closed", "rejected"} {
		if st[k] != 0 {
			t.Errorf("brokers counted %s=%d, want 0", k, st[k])
		}
	}
	if st["connections"] == 0 {
		t.Error("brokers counted no connections")
	}
	if lifetime > 0 && float64(st["reauthenticated"]) < auth["reauthenticated"] {
		t.Errorf("brokers counted %d re-authentications, the proxy %v", st["reauthenticated"], auth["reauthenticated"])
	}
}

// conn is what the proxy's debug log says about one client connection.
type conn struct {
	id       int
	broker   string
	duration time.Duration
	reauths  int
}

var (
	reConnID    = regexp.MustCompile(`\bconn=(\d+)\b`)
	reBroker    = regexp.MustCompile(`\bbroker=(\S+)`)
	reDuration  = regexp.MustCompile(`\bduration=(\S+)`)
	reLogLevel  = regexp.MustCompile(`\blevel=(WARN|ERROR)\b`)
	reHTTPAddr  = regexp.MustCompile(`msg="http endpoints" listen=(\S+)`)
	reStatsLine = regexp.MustCompile(`kafka-proxy demo: brokers saw (.*)`)
)

// parseConnections collects the connections that closed within log, with
// the renewals the proxy logged for each ("re-authenticated upstream").
func parseConnections(log string) []conn {
	byID := map[int]*conn{}
	get := func(line string) *conn {
		m := reConnID.FindStringSubmatch(line)
		if m == nil {
			return nil
		}
		id, _ := strconv.Atoi(m[1])
		if byID[id] == nil {
			byID[id] = &conn{id: id, duration: -1}
		}
		return byID[id]
	}
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, `msg="re-authenticated upstream"`):
			if c := get(line); c != nil {
				c.reauths++
			}
		case strings.Contains(line, `msg="connection closed"`):
			if c := get(line); c != nil {
				if m := reBroker.FindStringSubmatch(line); m != nil {
					c.broker = m[1]
				}
				if m := reDuration.FindStringSubmatch(line); m != nil {
					c.duration, _ = time.ParseDuration(m[1])
				}
			}
		}
	}
	var out []conn
	for _, c := range byID {
		if c.duration >= 0 {
			out = append(out, *c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// checkRenewals requires that the client's longest-lived connection was
// renewed at least twice and that no connection outlived a session
// unrenewed. A renewal is due at 85–95% of a lifetime but waits for the
// fetch in flight, hence the bound: a connection older than one lifetime
// plus the longest fetch wait (plus a second of slack) renewed at least
// once.
func checkRenewals(t *testing.T, client string, conns []conn, lifetime time.Duration) {
	t.Helper()
	if len(conns) == 0 {
		t.Errorf("%s: no client connections in the proxy's log", client)
		return
	}
	most := 0
	var summary []string
	for _, c := range conns {
		most = max(most, c.reauths)
		summary = append(summary, fmt.Sprintf("conn %d (%s) %v: %d", c.id, c.broker, c.duration.Round(100*time.Millisecond), c.reauths))
		if c.duration > lifetime+maxFetchWait+time.Second && c.reauths == 0 {
			t.Errorf("%s: connection %d to %s lived %v with %v sessions and was never re-authenticated", client, c.id, c.broker, c.duration, lifetime)
		}
	}
	t.Logf("%s: re-authentications per connection: %s", client, strings.Join(summary, "; "))
	if most < 2 {
		t.Errorf("%s: no connection was re-authenticated twice (most: %d): the run is too short to prove renewals keep working", client, most)
	}
}

// proxyWarnings returns the proxy's WARN and ERROR log lines in log.
func proxyWarnings(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if reLogLevel.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// metricsURL finds the demo's /metrics from its "http endpoints" log line
// (the demo listens on 127.0.0.1:0), waiting briefly since stderr is read
// concurrently with the "ready" line on stdout.
func (d *demoProc) metricsURL() (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := reHTTPAddr.FindStringSubmatch(d.out.String()); m != nil {
			return "http://" + m[1] + "/metrics", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no \"http endpoints\" line in the demo's log:\n%s", d.out.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// brokerStats parses the demo's exit report "kafka-proxy demo: brokers saw
// connections=N authenticated=N ...".
func (d *demoProc) brokerStats() (map[string]int, error) {
	m := reStatsLine.FindStringSubmatch(d.out.String())
	if m == nil {
		return nil, fmt.Errorf("the demo printed no \"brokers saw\" line on exit:\n%s", d.out.tail(20))
	}
	st := map[string]int{}
	for _, kv := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(kv, "=")
		st[k], _ = strconv.Atoi(v)
	}
	return st, nil
}

// metrics is a scrape in Prometheus' text format: series -> value.
type metrics map[string]float64

func scrape(url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds up name's series by the value of label.
func (m metrics) sum(name, label string) map[string]float64 {
	out := map[string]float64{}
	re := regexp.MustCompile(`\b` + label + `="([^"]*)"`)
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		key := ""
		if l := re.FindStringSubmatch(series); l != nil {
			key = l[1]
		}
		out[key] += v
	}
	return out
}

// waitNoOpenConnections waits until proxy_opened_connections is 0 for
// every broker: all client sessions ended and were logged.
func waitNoOpenConnections(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		m, err := scrape(url)
		if err == nil {
			open := 0.0
			for _, v := range m.sum("proxy_opened_connections", "broker") {
				open += v
			}
			if open == 0 {
				return nil
			}
			err = fmt.Errorf("%v client connections still open", open)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for the proxy's client connections to close: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
