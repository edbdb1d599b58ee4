// Package memkafka runs in-process Kafka clusters (franz-go kfake) for the
// demo and the tests: plain ones, and ones whose brokers speak TLS, mTLS,
// SASL or MSK IAM (SecureCluster). The binary links it for `kafka-proxy
// demo`, so it must not import testing; kafkatest wraps it for tests.
//
// It also covers kfake's gaps: a guard in front of every broker closes
// connections that send a request kfake would crash on (an unknown API key
// or version), as Apache Kafka closes them.
package memkafka

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Cluster is a running in-process cluster.
type Cluster struct {
	*kfake.Cluster
	guard *guard
}

// NewCluster starts a kfake cluster (3 brokers unless opts say otherwise)
// behind the guard, bound to 127.0.0.1. (Brokers that speak TLS or SASL
// are SecureCluster's.)
func NewCluster(opts ...kfake.Opt) (*Cluster, error) {
	g := &guard{}
	opts = append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)
	opts = append(opts, kfake.ListenFn(g.listen))
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, err
	}
	return &Cluster{Cluster: c, guard: g}, nil
}

// Rejected is the number of connections the guard closed.
func (c *Cluster) Rejected() int {
	c.guard.mu.Lock()
	defer c.guard.mu.Unlock()
	return c.guard.rejected
}

// guard wraps every accepted broker connection.
type guard struct {
	mu       sync.Mutex
	rejected int
}

func (g *guard) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return guardListener{Listener: ln, g: g}, nil
}

type guardListener struct {
	net.Listener
	g *guard
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c, g: l.g, r: bufio.NewReader(c)}, nil
}

// guardConn hands kfake whole frames only after checking their header.
type guardConn struct {
	net.Conn
	g       *guard
	r       *bufio.Reader
	pending []byte // rest of the current, already checked frame
}

func (c *guardConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		frame, bad, err := readRequest(c.r)
		if err != nil {
			return 0, err
		}
		if bad != nil {
			return 0, c.reject(bad)
		}
		c.pending = frame
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// maxFrame mirrors Kafka's socket.request.max.bytes default.
const maxFrame = 100 << 20

// readRequest reads one request frame (size prefix included) as a broker
// would. bad says why kfake could not take it (a size out of bounds, an
// unknown API key or version: Apache Kafka closes the connection for
// those, kfake would crash); err is the reader's.
func readRequest(r io.Reader) (frame []byte, bad, err error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 8 || n > maxFrame {
		return nil, fmt.Errorf("frame size %d", n), nil
	}
	frame = make([]byte, 4+int(n))
	copy(frame, size[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		return nil, nil, err
	}
	key := int16(binary.BigEndian.Uint16(frame[4:]))
	version := int16(binary.BigEndian.Uint16(frame[6:]))
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("unknown api key %d", key), nil
	}
	if version < 0 || (version > req.MaxVersion() && key != kmsg.ApiVersions.Int16()) {
		return nil, fmt.Errorf("unsupported %s version %d", kmsg.NameForKey(key), version), nil
	}
	return frame, nil, nil
}

func (c *guardConn) reject(err error) error {
	c.g.mu.Lock()
	c.g.rejected++
	c.g.mu.Unlock()
	_ = c.Conn.Close()
	return fmt.Errorf("memkafka guard: %w", err)
}
