package kafkatest

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// front sits inside each kfake broker's listener (kfake.ListenFn) and adds
// what kfake lacks for broker-side security tests:
//
//   - TLS termination (so the front sees frames; kfake.TLS would wrap it);
//   - SASL mechanisms kfake does not have (OAUTHBEARER, AWS_MSK_IAM),
//     answered by the front itself while kfake runs without SASL;
//   - KIP-368 session expiry: kfake announces session_lifetime_ms but never
//     closes an expired session; the front closes the connection when a
//     request other than re-authentication arrives after expiry, as Apache
//     Kafka does (or at the deadline itself, with SessionExpiryAtDeadline);
//   - Kafka's answer to bad PLAIN/SCRAM credentials: kfake just closes the
//     connection; the front first sends the SaslAuthenticate error Apache
//     Kafka sends, so clients can show the broker's message;
//   - the guard's check: a request kfake cannot parse closes the connection.
//
// The front keeps kfake's per-connection response order: its own answers
// wait until kfake has answered every earlier request.
type front struct {
	tls *tls.Config
	// local maps mechanisms the front answers to their validators; kfake
	// handles every other mechanism (when it has SASL enabled).
	local map[string]localMechanism
	// requireAuth refuses non-SASL requests before authentication, for
	// modes where kfake itself has SASL disabled.
	requireAuth bool
	// lifetime is connections.max.reauth.ms for local mechanisms.
	lifetime      time.Duration
	closeAtExpiry bool
	now           func() time.Time

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

// localMechanism validates one SaslAuthenticate payload.
type localMechanism func(auth []byte, now time.Time) (principal string, expiry time.Time, serverResp []byte, err error)

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
	l.f.count(func(s *SecureStats) { s.Connections++ })
	fc := &frontConn{Conn: c, f: l.f, r: bufio.NewReader(c)}
	fc.cond = sync.NewCond(&fc.mu)
	if l.f.closeAtExpiry {
		fc.timer = time.AfterFunc(time.Hour, fc.expireNow)
		fc.timer.Stop()
	}
	return fc, nil
}

type inflightReq struct {
	key, version int16
	corr         int32
}

type frontConn struct {
	net.Conn
	f       *front
	r       *bufio.Reader
	pending []byte // forwarded frame bytes not yet read by kfake

	wmu  sync.Mutex // one writer at a time: kfake's or the front's
	wbuf []byte     // partial response frame from kfake

	mu        sync.Mutex
	cond      *sync.Cond
	inflight  []inflightReq // forwarded requests awaiting kfake's response
	closed    bool
	peerGone  bool // the proxy's side ended (EOF or error): kfake closes because of that
	closeOnce sync.Once
	timer     *time.Timer

	// SASL state.
	authenticated bool
	principal     string
	expiry        time.Time
	handshakeMech string // mechanism of the exchange in progress
	localExchange bool   // the front answers the exchange in progress
	failedMsg     string // OAUTHBEARER error challenge sent; next request fails
}

var errFrontClosed = errors.New("kafkatest front: connection closed")

// Read hands kfake the next forwarded frame, answering SASL locally and
// enforcing expiry and the guard on the way.
func (c *frontConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		frame, bad, err := readRequest(c.r)
		if err != nil {
			c.mu.Lock()
			c.peerGone = true
			c.mu.Unlock()
			return 0, err
		}
		if bad != nil {
			c.f.count(func(s *SecureStats) { s.Rejected++ })
			c.Close()
			return 0, fmt.Errorf("kafkatest front: %w", bad)
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
	r := kbin.Reader{Src: frame[4:]}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	r.NullableString()             // client id
	req := kmsg.RequestForKey(key) // readRequest checked key and version
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	body := r.Src
	now := c.f.now()

	c.mu.Lock()
	failed, local, authed, expiry := c.failedMsg, c.localExchange, c.authenticated, c.expiry
	c.mu.Unlock()

	switch key {
	case kmsg.SASLHandshake.Int16():
		if err := req.ReadFrom(body); err != nil {
			return false, err
		}
		return c.handshake(req.(*kmsg.SASLHandshakeRequest), corr)
	case kmsg.SASLAuthenticate.Int16():
		if failed != "" || local {
			if err := req.ReadFrom(body); err != nil {
				return false, err
			}
			return false, c.authenticateLocal(req.(*kmsg.SASLAuthenticateRequest), corr, now)
		}
		c.track(inflightReq{key, version, corr})
		return true, nil
	case kmsg.ApiVersions.Int16():
	default:
		if c.f.requireAuth && !authed {
			c.f.count(func(s *SecureStats) { s.Rejected++ })
			return false, fmt.Errorf("kafkatest front: %s before authentication", kmsg.NameForKey(key))
		}
		if !expiry.IsZero() && now.After(expiry) {
			c.f.count(func(s *SecureStats) { s.ExpiredClosed++ })
			return false, fmt.Errorf("kafkatest front: SASL session expired %v ago", now.Sub(expiry))
		}
	}
	if key == kmsg.Produce.Int16() {
		if err := req.ReadFrom(body); err == nil && req.(*kmsg.ProduceRequest).Acks == 0 {
			return true, nil // no response will come
		}
	}
	c.track(inflightReq{key, version, corr})
	return true, nil
}

func (c *frontConn) track(r inflightReq) {
	c.mu.Lock()
	c.inflight = append(c.inflight, r)
	c.mu.Unlock()
}

// handshake answers SaslHandshake for local mechanisms (and for anything
// when kfake has no SASL), or forwards it to kfake.
func (c *frontConn) handshake(req *kmsg.SASLHandshakeRequest, corr int32) (bool, error) {
	c.mu.Lock()
	reauth := c.authenticated
	canReauth := !c.expiry.IsZero()
	c.mu.Unlock()
	_, local := c.f.local[req.Mechanism]
	if !local && !c.f.requireAuth {
		c.mu.Lock()
		c.handshakeMech, c.localExchange = req.Mechanism, false
		c.mu.Unlock()
		c.track(inflightReq{kmsg.SASLHandshake.Int16(), req.Version, corr})
		return true, nil
	}
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SetVersion(req.Version)
	for m := range c.f.local {
		resp.SupportedMechanisms = append(resp.SupportedMechanisms, m)
	}
	switch {
	case !local:
		resp.ErrorCode = 33 // UNSUPPORTED_SASL_MECHANISM
	case reauth && !canReauth:
		resp.ErrorCode = 34 // ILLEGAL_SASL_STATE: no session expiry, no re-auth
	default:
		c.mu.Lock()
		c.handshakeMech, c.localExchange = req.Mechanism, true
		c.mu.Unlock()
	}
	return false, c.respond(resp, corr)
}

// authenticateLocal validates a payload for a local mechanism.
func (c *frontConn) authenticateLocal(req *kmsg.SASLAuthenticateRequest, corr int32, now time.Time) error {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.SetVersion(req.Version)
	c.mu.Lock()
	mech, failed, prevPrincipal, reauth := c.handshakeMech, c.failedMsg, c.principal, c.authenticated
	c.mu.Unlock()
	fail := func(msg string) error {
		c.f.count(func(s *SecureStats) { s.AuthFailures++ })
		resp.ErrorCode = 58 // SASL_AUTHENTICATION_FAILED
		resp.ErrorMessage = &msg
		if err := c.respond(resp, corr); err != nil {
			return err
		}
		return fmt.Errorf("kafkatest front: %s authentication failed: %s", mech, msg)
	}
	if failed != "" {
		// RFC 7628: the client acknowledged our error challenge.
		return fail(failed)
	}
	principal, expiry, serverResp, err := c.f.local[mech](req.SASLAuthBytes, now)
	if err == nil && reauth && principal != prevPrincipal {
		err = fmt.Errorf("cannot change principals during re-authentication from %s: %s", prevPrincipal, principal)
	}
	if err != nil {
		if mech == "OAUTHBEARER" {
			// Kafka's OAuthBearerSaslServer: an error challenge first,
			// the failure after the client's %x01.
			challenge := `{"status":"invalid_token"}`
			c.mu.Lock()
			c.failedMsg = challenge
			c.mu.Unlock()
			resp.SASLAuthBytes = []byte(challenge)
			return c.respond(resp, corr)
		}
		return fail(fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s: %v", mech, err))
	}
	lifetime := c.f.lifetime
	if lifetime > 0 && !expiry.IsZero() && expiry.Sub(now) < lifetime {
		lifetime = expiry.Sub(now)
	}
	resp.SASLAuthBytes = serverResp
	if lifetime > 0 {
		resp.SessionLifetimeMillis = lifetime.Milliseconds()
	}
	c.mu.Lock()
	c.authenticated, c.principal, c.localExchange = true, principal, false
	c.mu.Unlock()
	c.startSession(lifetime, now, reauth)
	return c.respond(resp, corr)
}

func (c *frontConn) startSession(lifetime time.Duration, now time.Time, reauth bool) {
	c.mu.Lock()
	c.authenticated = true
	if lifetime > 0 {
		c.expiry = now.Add(lifetime)
		if c.timer != nil {
			c.timer.Reset(lifetime)
		}
	} else {
		c.expiry = time.Time{}
	}
	c.mu.Unlock()
	c.f.count(func(s *SecureStats) {
		if reauth {
			s.Reauthenticated++
		} else {
			s.Authenticated++
		}
	})
}

func (c *frontConn) expireNow() {
	c.f.count(func(s *SecureStats) { s.ExpiredClosed++ })
	c.closeOnce.Do(c.shutdown)
}

// respond writes the front's own response once kfake has answered every
// earlier request, keeping responses in request order.
func (c *frontConn) respond(resp kmsg.Response, corr int32) error {
	c.mu.Lock()
	for len(c.inflight) > 0 && !c.closed {
		c.cond.Wait()
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errFrontClosed
	}
	buf := make([]byte, 8, 64)
	binary.BigEndian.PutUint32(buf[4:], uint32(corr))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.Conn.Write(buf)
	return err
}

// Write carries kfake's responses, watching SaslAuthenticate results to
// learn session lifetimes for kfake-handled mechanisms.
func (c *frontConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.wbuf, p...)
	for len(c.wbuf) >= 4 {
		n := int(binary.BigEndian.Uint32(c.wbuf))
		if len(c.wbuf) < 4+n {
			break
		}
		frame := c.wbuf[:4+n]
		c.observe(frame)
		if _, err := c.Conn.Write(frame); err != nil {
			return 0, err
		}
		c.wbuf = c.wbuf[4+n:]
	}
	return len(p), nil
}

func (c *frontConn) observe(frame []byte) {
	c.mu.Lock()
	if len(c.inflight) == 0 {
		c.mu.Unlock()
		return
	}
	head := c.inflight[0]
	c.inflight = c.inflight[1:]
	reauth := c.authenticated
	c.cond.Broadcast()
	c.mu.Unlock()
	if head.key != kmsg.SASLAuthenticate.Int16() {
		return
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.SetVersion(head.version)
	body := frame[8:]
	if resp.IsFlexible() {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		body = r.Src
	}
	if resp.ReadFrom(body) != nil || resp.ErrorCode != 0 {
		return
	}
	// SCRAM's first round trip is not the end of the exchange; kfake only
	// sets the lifetime on the final response, and PLAIN is one step.
	c.mu.Lock()
	mech := c.handshakeMech
	c.mu.Unlock()
	final := resp.SessionLifetimeMillis > 0 || mech == "PLAIN" || len(resp.SASLAuthBytes) > 0 && resp.SASLAuthBytes[0] == 'v'
	if final {
		c.startSession(time.Duration(resp.SessionLifetimeMillis)*time.Millisecond, c.f.now(), reauth)
	}
}

// Close is how kfake ends a connection; when it does so in the middle of a
// SaslAuthenticate (kfake's reaction to bad credentials), the front first
// sends the error response Apache Kafka would.
func (c *frontConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		var head *inflightReq
		// A close after the proxy's side ended is kfake following the
		// proxy out (a renewal abandoned because its client left), not
		// kfake rejecting credentials.
		if len(c.inflight) > 0 && c.inflight[0].key == kmsg.SASLAuthenticate.Int16() && !c.peerGone {
			h := c.inflight[0]
			head = &h
		}
		mech := c.handshakeMech
		c.inflight = nil
		c.mu.Unlock()
		if head != nil {
			c.f.count(func(s *SecureStats) { s.AuthFailures++ })
			resp := kmsg.NewPtrSASLAuthenticateResponse()
			resp.SetVersion(head.version)
			resp.ErrorCode = 58
			msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
			resp.ErrorMessage = &msg
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_ = c.respond(resp, head.corr)
		}
		c.shutdown()
	})
	return nil
}

func (c *frontConn) shutdown() {
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	_ = c.Conn.Close()
}
