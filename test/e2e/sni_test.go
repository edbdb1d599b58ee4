package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

// TestSNIRouting: kcat, confluent-kafka-python, kafka-python and kafkajs
// reach a 3-broker cluster through one TLS port routed by SNI name. The
// namespace resolves bootstrap.kafka.test and broker-N.kafka.test to the
// proxy's address (/etc/netns/<ns>/hosts, which `ip netns exec` mounts
// over /etc/hosts), and can reach nothing else there: the proxy's
// per-broker listeners are on the root namespace's loopback, so only the
// SNI listener serves the clients. A name the proxy does not serve is
// refused with a log line naming it.
func TestSNIRouting(t *testing.T) {
	s := suiteFor(t)
	if s.ns == nil {
		requireTool(t, "a network namespace (for its hosts file)", fmt.Errorf("not available: %s", s.warning))
	}
	hostsDir := filepath.Join("/etc/netns", s.ns.name)
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(hostsDir)
	names := "bootstrap.kafka.test broker-0.kafka.test broker-1.kafka.test broker-2.kafka.test nope.kafka.test"
	if err := os.WriteFile(filepath.Join(hostsDir, "hosts"), []byte("127.0.0.1 localhost\n"+s.listenIP+" "+names+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	root, err := certs.NewRoot("kafka-proxy e2e SNI CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("kafka.test", []string{"*.kafka.test"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := srv.WriteFiles(s.tmp, "sni", certs.PKCS8, nil)
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := root.WriteCert(s.tmp, "sni-ca", false)
	if err != nil {
		t.Fatal(err)
	}
	sniPort, err := freePortRange(s.listenIP, 1)
	if err != nil {
		t.Fatal(err)
	}
	basePort, err := freePortRange("127.0.0.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	demo, err := startDemo(s.bin, "127.0.0.1", basePort, "--log-level", "debug",
		"--proxy-listener-tls-enable", "--proxy-listener-cert-file", files.Cert, "--proxy-listener-key-file", files.Key,
		"--sni-listen-address", net.JoinHostPort(s.listenIP, strconv.Itoa(sniPort)),
		"--sni-bootstrap-host", "bootstrap.kafka.test", "--sni-broker-host-pattern", "broker-$(nodeId).kafka.test")
	if err != nil {
		t.Fatalf("start demo with SNI routing: %v", err)
	}
	tg := &target{mode: "plaintext", demo: demo, bootstrap: demo.bootstrap, basePort: basePort, caFile: caFile, suffix: "-sni"}
	defer func() {
		if err := demo.stop(); err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", demo.out.String())
		}
	}()
	if want := "bootstrap.kafka.test:" + strconv.Itoa(sniPort); tg.bootstrap != want {
		t.Fatalf("demo bootstrap %q, want %q", tg.bootstrap, want)
	}
	for i := range 3 {
		tg.advertised = append(tg.advertised, fmt.Sprintf("broker-%d.kafka.test:%d", i, sniPort))
	}
	for _, c := range secureClients {
		t.Run(c.name, func(t *testing.T) { c.run(t, s, tg) })
	}
	t.Run("per-broker-listeners-unreachable", func(t *testing.T) {
		bash := "bash"
		for i := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			r := s.run(ctx, "", bash, "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", basePort+i))
			cancel()
			if r.err == nil {
				t.Errorf("the proxy's listener 127.0.0.1:%d is reachable from the namespace: the clients might not have used SNI", basePort+i)
			}
		}
	})
	t.Run("unknown-name", func(t *testing.T) {
		r := s.run(clientCtx(t), "", append([]string{lookKcat(t), "-L", "-b", "nope.kafka.test:" + strconv.Itoa(sniPort), "-m", "5"}, tg.kcatArgs()...)...)
		if r.err == nil {
			t.Errorf("kcat -L through an unknown SNI name succeeded:\n%s", r)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(demo.out.String(), `unknown SNI name \"nope.kafka.test\"`) {
			if time.Now().After(deadline) {
				t.Fatalf("the refusal of nope.kafka.test is not logged")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
