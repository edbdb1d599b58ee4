package integration

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// TestOperationalMetrics: after traffic, the latency histogram counts the
// answered requests by API key name, dials are timed, a client that hung
// up is counted as closed by the client, and a broker that refuses the
// dial is counted by reason on both the dial and the connection.
func TestOperationalMetrics(t *testing.T) {
	_, p := setup(t, nil)
	ctx := ctxT(t, 30*time.Second)
	cl := franzClient(t, p, kgo.DefaultProduceTopic("metrics"), kgo.AllowAutoTopicCreation())
	produceAll(ctx, t, cl, keyedValues(20))
	cl.Close()

	byKey := func(key string) float64 {
		return p.MetricSum(t, "proxy_request_duration_seconds", func(l map[string]string) bool { return l["api_key"] == key })
	}
	for _, key := range []string{"ApiVersions", "Metadata", "Produce"} {
		if byKey(key) == 0 {
			t.Errorf("no %s in proxy_request_duration_seconds", key)
		}
	}
	if n, forwarded := byKey("Produce"), float64(requestsOf(t, p, 0)); n != forwarded {
		t.Errorf("%v Produce latencies for %v Produce requests forwarded", n, forwarded)
	}
	if p.MetricSum(t, "proxy_upstream_dial_duration_seconds", nil) == 0 {
		t.Error("no dial timed")
	}
	closedBy := func(reason string) float64 {
		return p.MetricSum(t, "proxy_connections_closed_total", func(l map[string]string) bool { return l["reason"] == reason })
	}
	for deadline := time.Now().Add(5 * time.Second); closedBy("client") == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client's closed connections are not counted with reason client")
		}
	}

	// A broker port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	q := kafkatest.StartProxy(t, []string{gone}, nil)
	conn, err := net.Dial("tcp", q.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Read(make([]byte, 1)) // the proxy hangs up after the dial fails
	conn.Close()
	refused := q.MetricSum(t, "proxy_upstream_dial_errors_total", func(l map[string]string) bool { return l["reason"] == "refused" && l["broker"] == gone })
	failed := q.MetricSum(t, "proxy_connections_closed_total", func(l map[string]string) bool { return l["reason"] == "dial-failed" })
	if refused != 1 || failed != 1 {
		t.Errorf("refused dials %v, connections closed for a failed dial %v; want 1 and 1", refused, failed)
	}
}
