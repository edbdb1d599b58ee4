package memkafka

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// front sits inside each kfake broker's listener (kfake.ListenFn) and adds
// what kfake lacks for broker-side security tests:
//
//   - TLS termination (so the front sees frames; kfake.TLS would wrap it);
//   - SASL as Apache Kafka's SaslServerAuthenticator answers it, by the
//     product's own SASL server (internal/auth) while kfake runs without
//     SASL: every mechanism, Kafka's failure messages, KIP-368 session
//     lifetimes, re-authentication rules and the close of a connection
//     whose session expired (at its next request, or at the deadline with
//     WithExpiryAtDeadline);
//   - the guard's check: a request kfake cannot parse closes the connection.
//
// The front keeps kfake's per-connection response order: its own answers
// wait until kfake has answered every earlier request.
type front struct {
	tls *tls.Config
	// sasl configures each connection's SASL server; nil: no SASL, and
	// handshakes reach kfake.
	sasl          *auth.Config
	closeAtExpiry bool

	mu    sync.Mutex
	stats SecureStats
}

// SecureStats counts what the fronts of a cluster saw.
type SecureStats struct {
	Connections     int
	Authenticated   int // successful first authentications
	Reauthenticated int
	AuthFailures    int
	// ExpiredClosed counts connections closed because their SASL session
	// expired without re-authentication.
	ExpiredClosed int
	// Rejected counts connections closed for requests kfake cannot handle
	// or that came before authentication.
	Rejected int
}

// saslStepTimeout bounds one credential check.
const saslStepTimeout = 10 * time.Second

func (f *front) count(fn func(*SecureStats)) {
	f.mu.Lock()
	fn(&f.stats)
	f.mu.Unlock()
}

func (f *front) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if f.tls != nil {
		ln = tls.NewListener(ln, f.tls)
	}
	return frontListener{Listener: ln, f: f}, nil
}

type frontListener struct {
	net.Listener
	f *front
}

func (l frontListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &frontConn{Conn: c, f: l.f, r: bufio.NewReader(c)}
	if l.f.sasl != nil {
		if fc.sasl, err = auth.NewServer(*l.f.sasl); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	l.f.count(func(s *SecureStats) { s.Connections++ })
	fc.cond = sync.NewCond(&fc.mu)
	if l.f.closeAtExpiry {
		fc.timer = time.AfterFunc(time.Hour, fc.expireNow)
		fc.timer.Stop()
	}
	return fc, nil
}

type frontConn struct {
	net.Conn
	f       *front
	r       *bufio.Reader
	sasl    *auth.Server // nil: no SASL
	pending []byte       // forwarded frame bytes not yet read by kfake

	wmu  sync.Mutex // one writer at a time: kfake's or the front's
	wbuf []byte     // partial response frame from kfake

	mu        sync.Mutex
	cond      *sync.Cond
	inflight  int // forwarded requests awaiting kfake's response
	closed    bool
	closeOnce sync.Once
	timer     *time.Timer
}

var errFrontClosed = errors.New("memkafka front: connection closed")

// Read hands kfake the next forwarded frame, answering SASL locally and
// enforcing expiry and the guard on the way.
func (c *frontConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.sasl != nil && c.sasl.ExpectRaw() {
			if err := c.rawToken(); err != nil {
				c.Close()
				return 0, err
			}
			continue
		}
		frame, bad, err := readRequest(c.r)
		if err != nil {
			return 0, err
		}
		if bad != nil {
			c.f.count(func(s *SecureStats) { s.Rejected++ })
			c.Close()
			return 0, fmt.Errorf("memkafka front: %w", bad)
		}
		fwd, err := c.inspect(frame)
		if err != nil {
			c.Close()
			return 0, err
		}
		if fwd {
			c.pending = frame
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// inspect decides what happens to one request frame: forward to kfake
// (true), answered here (false), or close the connection (error).
func (c *frontConn) inspect(frame []byte) (bool, error) {
	h := wire.ParseRequestHeader(frame[4:])
	key := h.Key
	decode := func() (kmsg.Request, error) { return pipeline.DecodeRequest(frame[4:]) }

	if c.sasl != nil {
		switch kmsg.Key(key) {
		case kmsg.SASLHandshake:
			req, err := decode()
			if err != nil {
				return false, err
			}
			resp, out, err := c.sasl.HandleHandshake(req.(*kmsg.SASLHandshakeRequest))
			return false, c.answerSASL(resp, h.CorrelationID, out, err)
		case kmsg.SASLAuthenticate:
			req, err := decode()
			if err != nil {
				return false, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), saslStepTimeout)
			resp, out, err := c.sasl.HandleAuthenticate(ctx, req.(*kmsg.SASLAuthenticateRequest))
			cancel()
			if resp.ErrorCode == kerr.SaslAuthenticationFailed.Code {
				c.f.count(func(s *SecureStats) { s.AuthFailures++ })
			}
			return false, c.answerSASL(resp, h.CorrelationID, out, err)
		}
		if err := c.sasl.Permit(key); err != nil {
			c.f.count(func(s *SecureStats) {
				if errors.Is(err, auth.ErrSessionExpired) {
					s.ExpiredClosed++
				} else {
					s.Rejected++
				}
			})
			return false, fmt.Errorf("memkafka front: %w", err)
		}
	}
	if key == kmsg.Produce.Int16() {
		if acks, err := wire.ProduceAcks(frame[4:], h.Version); err == nil && acks == 0 {
			return true, nil // no response will come
		}
	}
	c.track()
	return true, nil
}

// answerSASL sends the SASL server's response and acts on its outcome.
func (c *frontConn) answerSASL(resp kmsg.Response, corr int32, out auth.Outcome, reason error) error {
	if err := c.respond(resp, corr); err != nil {
		return err
	}
	switch out {
	case auth.Authenticated, auth.Reauthenticated:
		c.startSession(out == auth.Reauthenticated)
	case auth.Close:
		return fmt.Errorf("memkafka front: sasl: %w", reason)
	}
	return nil
}

// rawToken answers one SASL token of the v0 flow (after SaslHandshake v0):
// a length-prefixed token with no request header, answered the same way.
func (c *frontConn) rawToken() error {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > uint32(c.sasl.MaxMessageSize()) {
		c.f.count(func(s *SecureStats) { s.AuthFailures++ })
		return fmt.Errorf("memkafka front: raw SASL token of %d bytes", n)
	}
	token := make([]byte, n)
	if _, err := io.ReadFull(c.r, token); err != nil {
		return err
	}
	wasAuthed := c.sasl.Authenticated()
	ctx, cancel := context.WithTimeout(context.Background(), saslStepTimeout)
	reply, err := c.sasl.StepRaw(ctx, token)
	cancel()
	if err != nil {
		c.f.count(func(s *SecureStats) { s.AuthFailures++ })
		return fmt.Errorf("memkafka front: sasl: %w", err)
	}
	if err := c.write(binary.BigEndian.AppendUint32(nil, uint32(len(reply))), reply); err != nil {
		return err
	}
	if !wasAuthed && c.sasl.Authenticated() {
		c.startSession(false)
	}
	return nil
}

func (c *frontConn) track() {
	c.mu.Lock()
	c.inflight++
	c.mu.Unlock()
}

// startSession counts an authentication and, with WithExpiryAtDeadline,
// arms the close at the session's expiry.
func (c *frontConn) startSession(reauth bool) {
	c.f.count(func(s *SecureStats) {
		if reauth {
			s.Reauthenticated++
		} else {
			s.Authenticated++
		}
	})
	if c.timer == nil {
		return
	}
	if exp := c.sasl.SessionExpiry(); !exp.IsZero() {
		c.timer.Reset(time.Until(exp))
	} else {
		c.timer.Stop()
	}
}

func (c *frontConn) expireNow() {
	c.f.count(func(s *SecureStats) { s.ExpiredClosed++ })
	c.Close()
}

// respond writes the front's own response once kfake has answered every
// earlier request, keeping responses in request order.
func (c *frontConn) respond(resp kmsg.Response, corr int32) error {
	return c.write(pipeline.AppendResponse(nil, resp, corr))
}

// write sends bytes of the front's own once every forwarded request has
// its response.
func (c *frontConn) write(bufs ...[]byte) error {
	c.mu.Lock()
	for c.inflight > 0 && !c.closed {
		c.cond.Wait()
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errFrontClosed
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, b := range bufs {
		if _, err := c.Conn.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Write carries kfake's responses, marking each forwarded request
// answered.
func (c *frontConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.wbuf, p...)
	for len(c.wbuf) >= 4 {
		n := int(binary.BigEndian.Uint32(c.wbuf))
		if len(c.wbuf) < 4+n {
			break
		}
		if _, err := c.Conn.Write(c.wbuf[:4+n]); err != nil {
			return 0, err
		}
		c.wbuf = c.wbuf[4+n:]
		c.answered()
	}
	return len(p), nil
}

func (c *frontConn) answered() {
	c.mu.Lock()
	if c.inflight > 0 {
		c.inflight--
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Close ends the connection, from kfake or the front; it may be called
// more than once.
func (c *frontConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		if c.timer != nil {
			c.timer.Stop()
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		_ = c.Conn.Close()
	})
	return nil
}
