// Package sni routes the connections of one TLS listener to the brokers by
// the name each client asked for in its TLS handshake (SNI): the bootstrap
// name reaches a bootstrap broker, and broker-$(nodeId) names reach the
// broker with that node id. The proxy advertises those names for every
// broker, so a cluster of any size, brokers added later included, needs one
// port (and one load balancer port in front of several proxies).
package sni

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// Placeholder stands for the node id in a broker host pattern.
const Placeholder = "$(nodeId)"

// ErrUnknownName means a client asked for a name the listener does not serve.
var ErrUnknownName = errors.New("unknown SNI name")

// Names are the host names one SNI listener serves: the bootstrap name and
// one name per broker.
type Names struct {
	bootstrap      string
	prefix, suffix string // around the node id in the broker pattern
}

// ParseNames checks the bootstrap name and the broker pattern, which must
// hold Placeholder exactly once and differ from the bootstrap name for
// every node id.
func ParseNames(bootstrap, pattern string) (*Names, error) {
	bootstrap = canonical(bootstrap)
	if err := checkHost(bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap host: %w", err)
	}
	if strings.Count(pattern, Placeholder) != 1 {
		return nil, fmt.Errorf("broker host pattern %q must contain %s exactly once", pattern, Placeholder)
	}
	prefix, suffix, _ := strings.Cut(pattern, Placeholder)
	n := &Names{bootstrap: bootstrap, prefix: canonical(prefix), suffix: canonical(suffix)}
	if err := checkHost(n.Broker(0)); err != nil {
		return nil, fmt.Errorf("broker host pattern %q: %w", pattern, err)
	}
	if _, ok := n.nodeID(bootstrap); ok {
		return nil, fmt.Errorf("bootstrap host %q is also a broker name of %q", bootstrap, pattern)
	}
	return n, nil
}

// Bootstrap is the bootstrap host name.
func (n *Names) Bootstrap() string { return n.bootstrap }

// Broker is the host name advertised for the broker with nodeID.
func (n *Names) Broker(nodeID int32) string {
	return n.prefix + strconv.FormatInt(int64(nodeID), 10) + n.suffix
}

// Bootstrapping is what Route returns for the bootstrap name.
const Bootstrapping = int32(-1)

// Route names the node a client's SNI name asks for: Bootstrapping for
// the bootstrap name, else the node id in a broker name. Names compare as
// DNS names do (case-insensitive, a trailing dot ignored).
func (n *Names) Route(serverName string) (int32, error) {
	name := canonical(serverName)
	if name == n.bootstrap {
		return Bootstrapping, nil
	}
	if id, ok := n.nodeID(name); ok {
		return id, nil
	}
	return 0, fmt.Errorf("%w %q: neither the bootstrap host %q nor a broker name %q", ErrUnknownName, serverName, n.bootstrap, n.prefix+Placeholder+n.suffix)
}

// nodeID reads the node id from a canonical broker name: decimal digits
// without leading zeros, so each node has one name.
func (n *Names) nodeID(name string) (int32, bool) {
	digits, ok := strings.CutPrefix(name, n.prefix)
	if ok {
		digits, ok = strings.CutSuffix(digits, n.suffix)
	}
	if !ok || digits == "" || digits[0] == '0' && digits != "0" || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	id, err := strconv.ParseInt(digits, 10, 32)
	return int32(id), err == nil
}

// canonical lower-cases a DNS name and drops a trailing dot.
func canonical(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// checkHost accepts a DNS host name (letters, digits, hyphens and dots,
// labels of 1 to 63 characters). An IP address cannot be an SNI name.
func checkHost(name string) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a DNS host name", name)
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a DNS host name", name)
			}
		}
	}
	if _, err := strconv.Atoi(name[strings.LastIndexByte(name, '.')+1:]); err == nil {
		return fmt.Errorf("%q is an IP address, not a name a TLS client sends", name)
	}
	return nil
}

// Brokers finds where a routed connection goes.
type Brokers interface {
	// Bootstrap is the address of a bootstrap broker, taken in turn.
	Bootstrap() string
	// Broker is the address of the broker with nodeID, learning the
	// cluster's brokers if need be.
	Broker(ctx context.Context, nodeID int32) (string, error)
}

// Step routes a connection of the SNI listener (one whose Client names no
// broker yet) by its SNI name; connections of the other listeners pass. It
// runs after the TLS step. A missing or unknown name is refused: the error
// names it, and the server logs it.
func Step(n *Names, brokers Brokers) pipeline.Step {
	return pipeline.Step{Name: "sni", Run: func(ctx context.Context, c *pipeline.Client) error {
		if c.Broker != "" {
			return nil
		}
		if c.ServerName == "" {
			return fmt.Errorf("%w: the client sent no SNI name (it must connect to %q or a broker name, not an IP address)", ErrUnknownName, n.bootstrap)
		}
		id, err := n.Route(c.ServerName)
		if err != nil {
			return err
		}
		if id == Bootstrapping {
			c.Broker = brokers.Bootstrap()
			return nil
		}
		if c.Broker, err = brokers.Broker(ctx, id); err != nil {
			return fmt.Errorf("SNI name %q: %w", c.ServerName, err)
		}
		return nil
	}}
}
