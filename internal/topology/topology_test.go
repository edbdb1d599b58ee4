package topology

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// fakeListen records the listeners the topology asks for and "binds" them:
// port 0 gets the next port from 40000, any other port is bound as asked.
type fakeListen struct {
	mu    sync.Mutex
	calls []string // "upstream->local"
	next  int
	fail  error
}

func (f *fakeListen) listen(upstream, local string) (net.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, upstream+"->"+local)
	if f.fail != nil {
		return nil, f.fail
	}
	host, port, err := config.SplitHostPort(local)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = 40000 + f.next
		f.next++
	}
	return &net.TCPAddr{IP: net.ParseIP(host), Port: port}, nil
}

func (f *fakeListen) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func newTopo(t *testing.T, px config.Proxy) (*Topology, *fakeListen, *bytes.Buffer) {
	t.Helper()
	if px.DynamicListeners.DefaultListenerIP == "" {
		px.DynamicListeners.DefaultListenerIP = "127.0.0.1"
	}
	f := &fakeListen{}
	var logs bytes.Buffer
	topo, err := New(px, f.listen, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return topo, f, &logs
}

func mapBroker(t *testing.T, topo *Topology, id int32, host string, port int32) string {
	t.Helper()
	h, p, err := topo.MapBroker(id, host, port)
	if err != nil {
		t.Fatalf("MapBroker(%d, %s:%d): %v", id, host, port, err)
	}
	return fmt.Sprintf("%s:%d", h, p)
}

// TestMapped: configured brokers (bootstrap and external) map to their
// advertised addresses without starting anything; host names compare
// case-insensitively, as DNS does.
func TestMapped(t *testing.T) {
	topo, f, _ := newTopo(t, config.Proxy{
		BootstrapServers: []config.Mapping{
			{Upstream: "kafka-0.example.com:9092", Listen: "127.0.0.1:32400"},
			{Upstream: "Kafka-1.Example.com:9092", Listen: "0.0.0.0:32401", Advertised: "proxy.example.com:443"},
		},
		ExternalServers: []config.Mapping{{Upstream: "kafka-2.example.com:9092", Listen: "other-proxy:32402"}},
	})
	cases := []struct {
		id   int32
		host string
		want string
	}{
		{0, "kafka-0.example.com", "127.0.0.1:32400"},
		{0, "KAFKA-0.EXAMPLE.COM", "127.0.0.1:32400"},
		{1, "kafka-1.example.com", "proxy.example.com:443"},
		{2, "kafka-2.example.com", "other-proxy:32402"},
	}
	for _, c := range cases {
		if got := mapBroker(t, topo, c.id, c.host, 9092); got != c.want {
			t.Errorf("MapBroker(%s) = %s, want %s", c.host, got, c.want)
		}
	}
	if got, ok := topo.Advertised("KAFKA-2.example.com:9092"); !ok || got != "other-proxy:32402" {
		t.Errorf("Advertised(external) = %q, %v", got, ok)
	}
	if _, ok := topo.Advertised("kafka-9.example.com:9092"); ok {
		t.Error("Advertised knows an unmapped broker")
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("listeners started for mapped brokers: %v", calls)
	}
}

func TestNewRejectsBadAddress(t *testing.T) {
	_, err := New(config.Proxy{BootstrapServers: []config.Mapping{{Upstream: "k:1", Listen: "nope"}}}, (&fakeListen{}).listen, slog.Default())
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("New = %v", err)
	}
}

// TestDynamic covers the three ways of choosing a dynamic listener's port
// and the advertised host.
func TestDynamic(t *testing.T) {
	type call struct {
		id   int32
		host string
	}
	brokers := []call{{5, "b5"}, {1, "b1"}, {5, "b5"}, {9, "b9"}}
	cases := []struct {
		name       string
		dyn        config.DynamicListeners
		wantListen []string
		wantMapped []string
	}{
		{"random", config.DynamicListeners{},
			[]string{"b5:9092->127.0.0.1:0", "b1:9092->127.0.0.1:0", "b9:9092->127.0.0.1:0"},
			[]string{"127.0.0.1:40000", "127.0.0.1:40001", "127.0.0.1:40000", "127.0.0.1:40002"}},
		{"sequential", config.DynamicListeners{SequentialMinPort: 33000},
			[]string{"b5:9092->127.0.0.1:33000", "b1:9092->127.0.0.1:33001", "b9:9092->127.0.0.1:33002"},
			[]string{"127.0.0.1:33000", "127.0.0.1:33001", "127.0.0.1:33000", "127.0.0.1:33002"}},
		{"deterministic", config.DynamicListeners{Deterministic: true, SequentialMinPort: 33000},
			[]string{"b5:9092->127.0.0.1:33005", "b1:9092->127.0.0.1:33001", "b9:9092->127.0.0.1:33009"},
			[]string{"127.0.0.1:33005", "127.0.0.1:33001", "127.0.0.1:33005", "127.0.0.1:33009"}},
		{"advertised listener", config.DynamicListeners{DefaultListenerIP: "0.0.0.0", AdvertisedListener: "proxy.example.com"},
			[]string{"b5:9092->0.0.0.0:0", "b1:9092->0.0.0.0:0", "b9:9092->0.0.0.0:0"},
			[]string{"proxy.example.com:40000", "proxy.example.com:40001", "proxy.example.com:40000", "proxy.example.com:40002"}},
		// As in the proxy we replace: {{.brokerId}} in the host, and a
		// fixed port advertised instead of the listener's.
		{"advertised template", config.DynamicListeners{DefaultListenerIP: "0.0.0.0", AdvertisedListener: "kafka-{{.brokerId}}.example.com"},
			[]string{"b5:9092->0.0.0.0:0", "b1:9092->0.0.0.0:0", "b9:9092->0.0.0.0:0"},
			[]string{"kafka-5.example.com:40000", "kafka-1.example.com:40001", "kafka-5.example.com:40000", "kafka-9.example.com:40002"}},
		{"advertised template with port", config.DynamicListeners{DefaultListenerIP: "0.0.0.0", AdvertisedListener: "kafka-{{.brokerId}}.example.com:9092"},
			[]string{"b5:9092->0.0.0.0:0", "b1:9092->0.0.0.0:0", "b9:9092->0.0.0.0:0"},
			[]string{"kafka-5.example.com:9092", "kafka-1.example.com:9092", "kafka-5.example.com:9092", "kafka-9.example.com:9092"}},
		{"advertised fixed port", config.DynamicListeners{DefaultListenerIP: "0.0.0.0", AdvertisedListener: "proxy.example.com:30000"},
			[]string{"b5:9092->0.0.0.0:0", "b1:9092->0.0.0.0:0", "b9:9092->0.0.0.0:0"},
			[]string{"proxy.example.com:30000", "proxy.example.com:30000", "proxy.example.com:30000", "proxy.example.com:30000"}},
		// --dynamic-sequential-max-ports: offsets wrap within the range.
		{"sequential max ports", config.DynamicListeners{SequentialMinPort: 33000, SequentialMaxPorts: 2},
			[]string{"b5:9092->127.0.0.1:33000", "b1:9092->127.0.0.1:33001", "b9:9092->127.0.0.1:33000"},
			[]string{"127.0.0.1:33000", "127.0.0.1:33001", "127.0.0.1:33000", "127.0.0.1:33000"}},
		{"deterministic max ports", config.DynamicListeners{Deterministic: true, SequentialMinPort: 33000, SequentialMaxPorts: 6},
			[]string{"b5:9092->127.0.0.1:33005", "b1:9092->127.0.0.1:33001", "b9:9092->127.0.0.1:33003"},
			[]string{"127.0.0.1:33005", "127.0.0.1:33001", "127.0.0.1:33005", "127.0.0.1:33003"}},
		{"advertised template brokerID", config.DynamicListeners{DefaultListenerIP: "0.0.0.0", AdvertisedListener: "b-{{.brokerID}}.example.com"},
			[]string{"b5:9092->0.0.0.0:0", "b1:9092->0.0.0.0:0", "b9:9092->0.0.0.0:0"},
			[]string{"b-5.example.com:40000", "b-1.example.com:40001", "b-5.example.com:40000", "b-9.example.com:40002"}},
		{"default listener ip", config.DynamicListeners{DefaultListenerIP: "10.1.2.3", Deterministic: true, SequentialMinPort: 100},
			[]string{"b5:9092->10.1.2.3:105", "b1:9092->10.1.2.3:101", "b9:9092->10.1.2.3:109"},
			[]string{"10.1.2.3:105", "10.1.2.3:101", "10.1.2.3:105", "10.1.2.3:109"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo, f, logs := newTopo(t, config.Proxy{
				BootstrapServers: []config.Mapping{{Upstream: "b0:9092", Listen: "127.0.0.1:32400"}},
				DynamicListeners: c.dyn,
			})
			var mapped []string
			for _, b := range brokers {
				mapped = append(mapped, mapBroker(t, topo, b.id, b.host, 9092))
			}
			if got := f.Calls(); strings.Join(got, " ") != strings.Join(c.wantListen, " ") {
				t.Errorf("listeners started %v, want %v", got, c.wantListen)
			}
			if strings.Join(mapped, " ") != strings.Join(c.wantMapped, " ") {
				t.Errorf("mapped %v, want %v", mapped, c.wantMapped)
			}
			if got, ok := topo.Advertised("B9:9092"); !ok || got != c.wantMapped[3] {
				t.Errorf("Advertised(b9) = %q, %v", got, ok)
			}
			if n := strings.Count(logs.String(), "dynamic listener started"); n != 3 {
				t.Errorf("logged %d dynamic listeners, want 3:\n%s", n, logs)
			}
		})
	}
}

func TestDynamicPortOutOfRange(t *testing.T) {
	for _, c := range []struct {
		dyn  config.DynamicListeners
		id   int32
		want string
	}{
		{config.DynamicListeners{Deterministic: true, SequentialMinPort: 65535}, 1,
			"deterministic port 65536 (--dynamic-sequential-min-port 65535 + node id 1) is not a port"},
		{config.DynamicListeners{Deterministic: true, SequentialMinPort: 100}, -1,
			"deterministic port 99 (--dynamic-sequential-min-port 100 + node id -1) is not a port"},
	} {
		topo, f, _ := newTopo(t, config.Proxy{DynamicListeners: c.dyn})
		_, _, err := topo.MapBroker(c.id, "b", 9092)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MapBroker = %v, want %q", err, c.want)
		}
		if calls := f.Calls(); len(calls) != 0 {
			t.Errorf("listened anyway: %v", calls)
		}
	}

	topo, f, _ := newTopo(t, config.Proxy{DynamicListeners: config.DynamicListeners{SequentialMinPort: 65535}})
	mapBroker(t, topo, 1, "b1", 9092)
	if _, _, err := topo.MapBroker(2, "b2", 9092); err == nil || !strings.Contains(err.Error(), "sequential dynamic ports from 65535 are exhausted") {
		t.Errorf("MapBroker past 65535 = %v", err)
	}
	if calls := f.Calls(); len(calls) != 1 {
		t.Errorf("listeners %v, want only b1's", calls)
	}
}

// TestDisabled: with dynamic listeners off an unmapped broker is an error
// that tells the operator which broker and which flag, logged once.
func TestDisabled(t *testing.T) {
	topo, f, logs := newTopo(t, config.Proxy{
		BootstrapServers: []config.Mapping{{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"}},
		DynamicListeners: config.DynamicListeners{Disable: true},
	})
	if got := mapBroker(t, topo, 0, "kafka-0", 9092); got != "127.0.0.1:32400" {
		t.Errorf("mapped broker = %s", got)
	}
	for range 3 {
		_, _, err := topo.MapBroker(7, "kafka-7", 9093)
		if !errors.Is(err, ErrNoMapping) {
			t.Fatalf("MapBroker = %v, want ErrNoMapping", err)
		}
		want := `broker has no mapping: broker 7 at kafka-7:9093 is not mapped and dynamic listeners are disabled; add --bootstrap-server-mapping "kafka-7:9093,<local host:port>" or --external-server-mapping`
		if err.Error() != want {
			t.Fatalf("error = %s\nwant %s", err, want)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("listeners started: %v", calls)
	}
	line := logs.String()
	if strings.Count(line, "level=ERROR") != 1 || !strings.Contains(line, "broker=kafka-7:9093") ||
		!strings.Contains(line, `--bootstrap-server-mapping \"kafka-7:9093,<local host:port>\"`) {
		t.Errorf("want one error line naming the broker and the flag, got:\n%s", line)
	}
}

// TestListenFailure: a failed dynamic listener is not remembered, so the
// next response that names the broker tries again.
func TestListenFailure(t *testing.T) {
	topo, f, _ := newTopo(t, config.Proxy{})
	f.fail = errors.New("address already in use")
	_, _, err := topo.MapBroker(3, "b3", 9092)
	if err == nil || err.Error() != "start dynamic listener for broker 3 at b3:9092 on 127.0.0.1:0: address already in use" {
		t.Fatalf("MapBroker = %v", err)
	}
	f.fail = nil
	if got := mapBroker(t, topo, 3, "b3", 9092); got != "127.0.0.1:40000" {
		t.Errorf("after recovery = %s", got)
	}
	if calls := f.Calls(); len(calls) != 2 {
		t.Errorf("listen calls %v, want 2", calls)
	}
}

// TestBound: a bootstrap mapping that asked for port 0 is advertised at the
// port the kernel picked; explicit ports and advertised addresses stay.
func TestBound(t *testing.T) {
	ms := []config.Mapping{
		{Upstream: "b0:9092", Listen: "127.0.0.1:0"},
		{Upstream: "b1:9092", Listen: "127.0.0.1:0", Advertised: "proxy:443"},
		{Upstream: "b2:9092", Listen: "127.0.0.1:32402"},
	}
	topo, _, _ := newTopo(t, config.Proxy{BootstrapServers: ms})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, m := range ms {
		topo.Bound(m, ln.Addr())
	}
	want := []string{ln.Addr().String(), "proxy:443", "127.0.0.1:32402"}
	for i, m := range ms {
		if got, _ := topo.Advertised(strings.ToUpper(m.Upstream)); got != want[i] {
			t.Errorf("Advertised(%s) = %s, want %s", m.Upstream, got, want[i])
		}
	}
	if got := mapBroker(t, topo, 0, "b0", 9092); got != ln.Addr().String() {
		t.Errorf("MapBroker(b0) = %s, want %s", got, ln.Addr())
	}
}

// TestConcurrentMapBroker: many sessions learn of the same brokers at once;
// each broker must get exactly one listener and everyone the same address.
// Run with -race.
func TestConcurrentMapBroker(t *testing.T) {
	topo, f, _ := newTopo(t, config.Proxy{})
	const brokers, goroutines = 8, 32
	results := make([][brokers]string, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range brokers {
				id := int32((i + g) % brokers) // different orders
				h, p, err := topo.MapBroker(id, fmt.Sprintf("broker-%d", id), 9092)
				if err != nil {
					t.Error(err)
					return
				}
				results[g][id] = fmt.Sprintf("%s:%d", h, p)
				if _, ok := topo.Advertised(fmt.Sprintf("broker-%d:9092", id)); !ok {
					t.Error("Advertised does not know a mapped broker")
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if calls := f.Calls(); len(calls) != brokers {
		t.Fatalf("%d listeners started, want %d: %v", len(calls), brokers, calls)
	}
	seen := map[string]bool{}
	for i := range brokers {
		addr := results[0][i]
		if seen[addr] {
			t.Errorf("address %s given to two brokers", addr)
		}
		seen[addr] = true
		for g := range goroutines {
			if results[g][i] != addr {
				t.Errorf("goroutine %d got %s for broker %d, goroutine 0 got %s", g, results[g][i], i, addr)
			}
		}
	}
}

// TestSNINames: with SNI routing, every broker, mapped or discovered, is
// advertised by its node's name at the SNI port, no dynamic listener is
// started, and each node's latest address is known for routing.
func TestSNINames(t *testing.T) {
	px := config.Default().Proxy
	px.BootstrapServers = []config.Mapping{{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"}}
	px.SNI = config.SNI{ListenAddress: "0.0.0.0:0", BootstrapHost: "bootstrap.kafka.test", BrokerHostPattern: "broker-$(nodeId).kafka.test"}
	fl := &fakeListen{}
	topo, err := New(px, fl.listen, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	topo.SNIBound(&net.TCPAddr{IP: net.IPv4zero, Port: 9443})
	for _, b := range []struct {
		id   int32
		host string
	}{{0, "kafka-0"}, {1, "kafka-1"}, {2, "Kafka-2"}} {
		host, port, err := topo.MapBroker(b.id, b.host, 9092)
		if want := fmt.Sprintf("broker-%d.kafka.test", b.id); err != nil || host != want || port != 9443 {
			t.Errorf("MapBroker(%d) = %s:%d, %v; want %s:9443", b.id, host, port, err, want)
		}
	}
	if len(fl.calls) != 0 {
		t.Errorf("dynamic listeners started: %v", fl.calls)
	}
	if b, ok := topo.NodeBroker(2); !ok || b != "kafka-2:9092" {
		t.Errorf("NodeBroker(2) = %q, %v", b, ok)
	}
	if _, _, err := topo.MapBroker(2, "kafka-2b", 9093); err != nil {
		t.Fatal(err)
	}
	if b, _ := topo.NodeBroker(2); b != "kafka-2b:9093" {
		t.Errorf("node 2 moved, NodeBroker(2) = %q", b)
	}
	if _, ok := topo.NodeBroker(5); ok {
		t.Errorf("NodeBroker(5) known before any response named it")
	}
	if _, _, err := topo.MapBroker(-1, "kafka-x", 9092); err == nil {
		t.Errorf("a negative node id got an SNI name")
	}

	// A fixed advertised port (a load balancer's) wins over the bound one.
	px.SNI.AdvertisedPort = 443
	topo, _ = New(px, fl.listen, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	topo.SNIBound(&net.TCPAddr{IP: net.IPv4zero, Port: 9443})
	if host, port, _ := topo.MapBroker(1, "kafka-1", 9092); host != "broker-1.kafka.test" || port != 443 {
		t.Errorf("with --sni-advertised-port 443: %s:%d", host, port)
	}
}
