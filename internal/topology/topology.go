// Package topology knows, for every broker, the address clients must use
// to reach it through the proxy. It maps configured brokers, and starts a
// dynamic listener for each broker it discovers in a response, so that a
// client never learns a broker's real address.
package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/sni"
)

// ErrNoMapping means a broker has no mapping and dynamic listeners are off.
var ErrNoMapping = errors.New("broker has no mapping")

// ListenFunc starts a listener on local that proxies to the broker at
// upstream, and returns the address it actually bound (local may ask for
// port 0).
type ListenFunc func(upstream, local string) (net.Addr, error)

// Topology is safe for concurrent use by all sessions.
type Topology struct {
	dyn    config.DynamicListeners
	adv    *config.AdvertisedTemplate // nil: advertise DefaultListenerIP
	listen ListenFunc
	log    *slog.Logger
	// names, when SNI routing is on, are what every broker is advertised
	// as, at sniPort; no dynamic listener is started then.
	names *sni.Names

	mu       sync.Mutex
	advert   map[string]address // broker host:port -> advertised address
	nodes    map[string]int32   // broker host:port -> node id, once a response named it
	byNode   map[int32]string   // node id -> broker host:port, the latest a response named
	sniPort  int32
	nextPort int                 // next sequential dynamic port, 0 for random
	unmapped map[string]struct{} // brokers already logged as unmapped
}

type address struct {
	host string
	port int32
}

// New builds the topology from the configured mappings. Bootstrap mappings
// are registered here, but their listeners are started by the server.
func New(px config.Proxy, listen ListenFunc, log *slog.Logger) (*Topology, error) {
	t := &Topology{
		dyn:      px.DynamicListeners,
		listen:   listen,
		log:      log,
		advert:   map[string]address{},
		unmapped: map[string]struct{}{},
		nodes:    map[string]int32{},
		byNode:   map[int32]string{},
		nextPort: px.DynamicListeners.SequentialMinPort,
		sniPort:  int32(px.SNI.AdvertisedPort),
	}
	if px.SNI.Enabled() {
		names, err := sni.ParseNames(px.SNI.BootstrapHost, px.SNI.BrokerHostPattern)
		if err != nil {
			return nil, fmt.Errorf("--sni-broker-host-pattern: %w", err)
		}
		t.names = names
	}
	if s := px.DynamicListeners.AdvertisedListener; s != "" {
		adv, err := config.ParseAdvertisedTemplate(s)
		if err != nil {
			return nil, fmt.Errorf("--dynamic-advertised-listener %q: %w", s, err)
		}
		t.adv = adv
	}
	for _, m := range append(append([]config.Mapping{}, px.BootstrapServers...), px.ExternalServers...) {
		host, port, err := config.SplitHostPort(m.AdvertisedAddress())
		if err != nil {
			return nil, err
		}
		t.advert[normalize(m.Upstream)] = address{host, int32(port)}
	}
	return t, nil
}

// Map advertises m's address for its broker (a bootstrap or external
// mapping added while running); Bound then corrects a port 0.
func (t *Topology) Map(m config.Mapping) error {
	host, port, err := config.SplitHostPort(m.AdvertisedAddress())
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.advert[normalize(m.Upstream)] = address{host, int32(port)}
	t.mu.Unlock()
	return nil
}

// Unmap forgets a removed mapping's broker: a response naming it again
// gets a dynamic listener, or the unmapped-broker error.
func (t *Topology) Unmap(upstream string) {
	t.mu.Lock()
	delete(t.advert, normalize(upstream))
	delete(t.unmapped, normalize(upstream))
	t.mu.Unlock()
}

// Bound records the address a bootstrap listener really bound. A mapping
// that asked for port 0 and names no advertised address is advertised at
// the bound port (useful for tests and for letting the kernel pick).
func (t *Topology) Bound(m config.Mapping, addr net.Addr) {
	if m.Advertised != "" {
		return
	}
	if _, port, err := config.SplitHostPort(m.Listen); err != nil || port != 0 {
		return
	}
	host, _, _ := config.SplitHostPort(m.Listen)
	_, p, _ := config.SplitHostPort(addr.String())
	t.mu.Lock()
	t.advert[normalize(m.Upstream)] = address{host, int32(p)}
	t.mu.Unlock()
}

// SNIBound records the port the SNI listener bound, advertised with the
// broker names unless --sni-advertised-port names another.
func (t *Topology) SNIBound(addr net.Addr) {
	_, p, err := config.SplitHostPort(addr.String())
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil && t.sniPort == 0 {
		t.sniPort = int32(p)
	}
}

// SNINames are the names of SNI routing, nil when it is off.
func (t *Topology) SNINames() *sni.Names { return t.names }

// NodeBroker is the address of the broker with nodeID, once a response
// named it.
func (t *Topology) NodeBroker(nodeID int32) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.byNode[nodeID]
	return b, ok
}

// Advertised returns the proxy address clients are told for a broker
// address, if it is known.
func (t *Topology) Advertised(broker string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.advert[normalize(broker)]
	if !ok {
		return "", false
	}
	return net.JoinHostPort(a.host, strconv.Itoa(int(a.port))), true
}

// MapBroker implements rewrite.Mapper: it returns the proxy address for the
// broker a response names, starting a dynamic listener on first sight.
func (t *Topology) MapBroker(nodeID int32, host string, port int32) (string, int32, error) {
	broker := net.JoinHostPort(host, strconv.Itoa(int(port)))
	key := normalize(broker)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nodes[key] = nodeID
	t.byNode[nodeID] = key
	if t.names != nil {
		// One name per node id, whatever the broker's address: a broker
		// that moves keeps its name, and the SNI step follows it.
		if nodeID < 0 {
			return "", 0, fmt.Errorf("broker at %s has node id %d, which has no SNI name", broker, nodeID)
		}
		a := address{t.names.Broker(nodeID), t.sniPort}
		t.advert[key] = a
		return a.host, a.port, nil
	}
	if a, ok := t.advert[key]; ok {
		return a.host, a.port, nil
	}
	if t.dyn.Disable {
		hint := fmt.Sprintf("--bootstrap-server-mapping %q", broker+",<local host:port>")
		// Every client that learns of the broker fails on it; one error
		// line per broker tells the operator without flooding the log
		// (each failed connection is still logged where it ends).
		if _, seen := t.unmapped[key]; !seen {
			t.unmapped[key] = struct{}{}
			t.log.Error("broker is not mapped and dynamic listeners are disabled: clients cannot reach it", "broker", broker, "node_id", nodeID, "add", hint)
		}
		return "", 0, fmt.Errorf("%w: broker %d at %s is not mapped and dynamic listeners are disabled; add %s or --external-server-mapping", ErrNoMapping, nodeID, broker, hint)
	}
	want, err := t.dynamicPort(nodeID)
	if err != nil {
		return "", 0, fmt.Errorf("dynamic listener for broker %d at %s: %w", nodeID, broker, err)
	}
	local := net.JoinHostPort(t.dyn.DefaultListenerIP, strconv.Itoa(want))
	bound, err := t.listen(broker, local)
	if err != nil {
		return "", 0, fmt.Errorf("start dynamic listener for broker %d at %s on %s: %w", nodeID, broker, local, err)
	}
	_, boundPort, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", 0, err
	}
	p, _ := strconv.Atoi(boundPort)
	a := address{t.dyn.DefaultListenerIP, int32(p)}
	if t.adv != nil {
		if a.host, a.port, err = t.adv.Address(nodeID, p); err != nil {
			return "", 0, fmt.Errorf("--dynamic-advertised-listener for broker %d: %w", nodeID, err)
		}
	}
	t.advert[key] = a
	t.log.Info("dynamic listener started", "broker", broker, "node_id", nodeID, "listen", bound.String(), "advertised", net.JoinHostPort(a.host, strconv.Itoa(int(a.port))))
	return a.host, a.port, nil
}

// Broker is one broker the proxy serves: its address, its node id (-1
// until a response named it) and what the proxy advertises for it.
type Broker struct {
	Upstream   string
	NodeID     int32
	Advertised string
}

// Brokers lists the brokers with an advertised address, by upstream address.
func (t *Topology) Brokers() []Broker {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Broker, 0, len(t.advert))
	for key, a := range t.advert {
		id, ok := t.nodes[key]
		if !ok {
			id = -1
		}
		out = append(out, Broker{Upstream: key, NodeID: id, Advertised: net.JoinHostPort(a.host, strconv.Itoa(int(a.port)))})
	}
	slices.SortFunc(out, func(a, b Broker) int { return strings.Compare(a.Upstream, b.Upstream) })
	return out
}

// dynamicPort picks the port for a new dynamic listener: min+nodeID when
// deterministic, the next sequential port when a minimum is set, else 0 so
// the kernel picks one; with --dynamic-sequential-max-ports the offset
// wraps within that many ports. A port out of range is an error rather than a
// listen on a port the operator did not choose (a negative node id would
// otherwise bind below the minimum, and 65536 wraps nowhere useful).
func (t *Topology) dynamicPort(nodeID int32) (int, error) {
	span := t.dyn.SequentialMaxPorts // 0: no bound
	switch {
	case t.dyn.Deterministic:
		off := int(nodeID)
		if span > 0 && nodeID >= 0 {
			off %= span
		}
		p := t.dyn.SequentialMinPort + off
		if nodeID < 0 || p > 65535 {
			return 0, fmt.Errorf("deterministic port %d (--dynamic-sequential-min-port %d + node id %d) is not a port", p, t.dyn.SequentialMinPort, nodeID)
		}
		return p, nil
	case t.nextPort > 65535:
		return 0, fmt.Errorf("sequential dynamic ports from %d are exhausted", t.dyn.SequentialMinPort)
	case t.nextPort > 0:
		p := t.nextPort
		t.nextPort++
		if span > 0 && t.nextPort >= t.dyn.SequentialMinPort+span {
			t.nextPort = t.dyn.SequentialMinPort // wraps within --dynamic-sequential-max-ports
		}
		return p, nil
	}
	return 0, nil
}

// normalize makes "Host:port" comparable: host names are case-insensitive.
func normalize(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	b := []byte(host)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return net.JoinHostPort(string(b), port)
}
