package integration

import (
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// TestBrokerCloseReachesIdleClient: when the brokers go away (a restart),
// a client connection with nothing in flight is closed at once, as a
// direct connection would show it, so the client reconnects before its
// next request instead of losing that request to a dead connection. Over
// TLS 1.3 the brokers send session tickets after the handshake, unasked:
// those must not count as a close.
func TestBrokerCloseReachesIdleClient(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the broker watch is Linux-only")
	}
	for _, mode := range []memkafka.SecurityMode{0, memkafka.MTLS, memkafka.SCRAM512TLS} {
		name := "plaintext"
		if mode != 0 {
			name = mode.String()
		}
		t.Run(name, func(t *testing.T) {
			var (
				p         *kafkatest.Proxy
				stopBroke func()
			)
			if mode == 0 {
				var c *memkafka.Cluster
				c, p = setup(t, nil)
				stopBroke = c.Close
			} else {
				var c *memkafka.SecureCluster
				c, p = secureProxy(t, mode)
				stopBroke = c.Close
			}
			conn, err := net.Dial("tcp", p.Bootstrap)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(3)
			req.ClientSoftwareName, req.ClientSoftwareVersion = "idle-test", "1"
			if _, err := conn.Write(kafkatest.RequestFrame(req, 1, "idle-test")); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := kafkatest.ReadFrame(conn); err != nil {
				t.Fatalf("ApiVersions through the proxy: %v", err)
			}
			// Idle, brokers up: the connection stays open.
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			var b [1]byte
			if n, err := conn.Read(b[:]); !isTimeout(err) {
				t.Fatalf("idle connection: read %d bytes, %v; want it to stay open", n, err)
			}
			stopBroke()
			start := time.Now()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := conn.Read(b[:]); n != 0 || err == nil || isTimeout(err) {
				t.Fatalf("after the brokers stopped: read %d bytes, %v; want the connection closed", n, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("client saw the close after %v", d)
			}
			if !p.Logs.WaitFor(2*time.Second, "broker closed the connection while no request was in flight") {
				t.Fatalf("no log line for the close; logs:\n%s", p.Logs)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
