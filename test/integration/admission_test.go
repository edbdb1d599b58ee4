package integration

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// dialFrom connects to the proxy from a loopback address of its own, so
// that filters see a different client.
func dialFrom(t *testing.T, p *kafkatest.Proxy, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// served reports whether the proxy answers an ApiVersions on conn; a
// refused connection is closed without a byte.
func served(t *testing.T, conn net.Conn) bool {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	if _, err := conn.Write(requestFrame(req, 1)); err != nil {
		return false
	}
	if _, err := readFrame(conn); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return false
		}
		t.Fatalf("read: %v", err)
	}
	return true
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func rejected(t *testing.T, p *kafkatest.Proxy, reason string) float64 {
	return p.MetricSum(t, "proxy_connections_rejected_total", func(l map[string]string) bool {
		return l["reason"] == reason && l["listener"] == p.Bootstrap
	})
}

// TestIPFilter: allow and deny lists (comma lists, IPv4 and IPv6, deny
// wins) refuse clients at accept, counted by reason.
func TestIPFilter(t *testing.T) {
	_, p := setup(t, func(cfg *config.Config) {
		cfg.Proxy.Admission.AllowCIDRs = []string{"127.0.0.0/29,::1/128", "127.0.0.9"}
		cfg.Proxy.Admission.DenyCIDRs = []string{"2001:db8::/32,127.0.0.2/32"}
	})
	if !served(t, dialFrom(t, p, "127.0.0.1")) {
		t.Fatal("127.0.0.1 (allowed) not served")
	}
	if !served(t, dialFrom(t, p, "127.0.0.9")) {
		t.Fatal("127.0.0.9 (allowed as a bare address) not served")
	}
	if served(t, dialFrom(t, p, "127.0.0.2")) {
		t.Fatal("127.0.0.2 served: it is allowed but also denied, and deny wins")
	}
	if served(t, dialFrom(t, p, "127.0.0.10")) {
		t.Fatal("127.0.0.10 served: outside the allow list")
	}
	if got := rejected(t, p, "ip-denied"); got != 1 {
		t.Errorf("ip-denied counted %v, want 1", got)
	}
	if got := rejected(t, p, "ip-not-allowed"); got != 1 {
		t.Errorf("ip-not-allowed counted %v, want 1", got)
	}
	if !p.Logs.WaitFor(5*time.Second, "ip filter refused connections") {
		t.Errorf("refusals not summarised in the log:\n%s", p.Logs.String())
	}
}

// TestConnectionLimits: over a limit new connections are refused and the
// open ones keep working; a closed one frees its slot.
func TestConnectionLimits(t *testing.T) {
	_, p := setup(t, func(cfg *config.Config) {
		cfg.Proxy.Admission.MaxConnectionsPerIP = 2
		cfg.Proxy.Admission.MaxConnections = 3
	})
	a1, a2 := dialFrom(t, p, "127.0.0.4"), dialFrom(t, p, "127.0.0.4")
	if !served(t, a1) || !served(t, a2) {
		t.Fatal("first two connections from one address not served")
	}
	if served(t, dialFrom(t, p, "127.0.0.4")) {
		t.Fatal("a third connection from 127.0.0.4 served (limit 2 per address)")
	}
	b := dialFrom(t, p, "127.0.0.5")
	if !served(t, b) {
		t.Fatal("another address not served")
	}
	if served(t, dialFrom(t, p, "127.0.0.6")) {
		t.Fatal("a fourth connection served (limit 3)")
	}
	if !served(t, a1) || !served(t, b) {
		t.Fatal("open connections stopped working at the limit")
	}
	if rejected(t, p, "max-connections-per-ip") != 1 || rejected(t, p, "max-connections") != 1 {
		t.Errorf("refusals counted %v per ip, %v total", rejected(t, p, "max-connections-per-ip"), rejected(t, p, "max-connections"))
	}
	_ = a2.Close()
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok = served(t, dialFrom(t, p, "127.0.0.4"))
	}
	if !ok {
		t.Fatal("a closed connection did not free its slot")
	}
}
