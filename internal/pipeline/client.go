// Package pipeline is the request path's vocabulary: the Client that
// admission steps fill in once per connection, and the stages that see
// each request and response. The server builds both lists once from
// config; their order is the request path (see docs/design.md).
package pipeline

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
)

// Anonymous is the principal of a client that has not authenticated, as
// Kafka names it.
const Anonymous = "User:ANONYMOUS"

// Client is what the proxy knows about one accepted connection. Admission
// steps fill it in; stages read it.
type Client struct {
	// Conn is the client connection as the session speaks to it: after
	// TLS, once the TLS step ran.
	Conn net.Conn
	// Remote is the client's address: the peer of the socket, or the
	// original client once a PROXY protocol header says so.
	Remote net.Addr
	// Listener is the local address the client connected to.
	Listener net.Addr
	// Broker is the upstream address this connection is proxied to.
	Broker string
	// TLS is the client-facing TLS state, nil for a plaintext listener.
	TLS *tls.ConnectionState
	// ServerName is the SNI name the client asked for, if any.
	ServerName string
	// Principal is who the client is, "User:<name>" as Kafka writes it;
	// Anonymous until a step or stage establishes more.
	Principal string
	// SASL is the client's SASL session when the listener terminates SASL
	// (--auth-local-enable), nil otherwise.
	SASL *auth.Server

	ended func() // what OnEnd registered, in reverse order
}

// OnEnd registers fn to run once the connection has ended (a step that
// took a connection slot gives it back). The connection itself is left
// unwrapped, so that the session can still splice between sockets.
func (c *Client) OnEnd(fn func()) {
	if prev := c.ended; prev != nil {
		c.ended = func() { fn(); prev() }
		return
	}
	c.ended = fn
}

// End runs what OnEnd registered; the server calls it once, when the
// connection is closed.
func (c *Client) End() {
	if fn := c.ended; fn != nil {
		c.ended = nil
		fn()
	}
}

// NewClient starts a Client for a connection accepted on a listener that
// proxies to broker.
func NewClient(conn net.Conn, broker string) *Client {
	return &Client{Conn: conn, Remote: conn.RemoteAddr(), Listener: conn.LocalAddr(), Broker: broker, Principal: Anonymous}
}

// Step is one admission step: it may wrap c.Conn (TLS), learn more about
// the client, or refuse it with an error.
type Step struct {
	Name string
	Run  func(ctx context.Context, c *Client) error
}

// Admit runs the steps in order. The first error ends admission; it names
// the step, so the one log line for the closed connection says which
// check refused it.
func Admit(ctx context.Context, steps []Step, c *Client) error {
	for _, s := range steps {
		if err := s.Run(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return nil
}
