// Package server owns the proxy's listeners and connections: it accepts
// clients, dials their broker, runs a proxy session per connection, and
// drains them all on shutdown.
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/acl"
	"github.com/kafka-proxy/kafka-proxy/internal/audit"
	"github.com/kafka-proxy/kafka-proxy/internal/clientauth"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/connfilter"
	"github.com/kafka-proxy/kafka-proxy/internal/metrics"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/policy"
	"github.com/kafka-proxy/kafka-proxy/internal/proxy"
	"github.com/kafka-proxy/kafka-proxy/internal/rewrite"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
	"github.com/kafka-proxy/kafka-proxy/internal/topology"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// Server is one running proxy.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	metrics *metrics.Metrics
	topo    *topology.Topology
	opts    proxy.Options

	// The request path: admission steps run once per connection, then
	// the dial as the client's upstream identity, then the session runs
	// opts.Stages per request and response.
	admission []pipeline.Step
	upstreams *upstreams
	closeDial func() // releases what the dialers hold (credential refreshers)
	// localAuth, when set, authenticates each client after the dial and
	// before its session (--auth-local-enable).
	localAuth *clientauth.Gate
	// acls, when set, holds the rules of the acls stage; watchDone
	// closes when its reload loop (file watch and SIGHUP) ended.
	acls      *acl.Store
	trail     *audit.Log // nil without --audit-log
	watchDone chan struct{}
	onHangup  []func() // more to do on SIGHUP (OnHangup)
	ready     readiness

	ctx    context.Context // cancelled at shutdown: aborts dials
	cancel context.CancelFunc
	connID atomic.Uint64
	wg     sync.WaitGroup

	mu        sync.Mutex
	closing   bool
	listeners []*listener
	sessions  map[*proxy.Session]*listener // each with the listener it came through
	drained   map[*proxy.Session]bool      // sessions of removed listeners (Remap)
	// bootstrap and external are the mappings in force (Remap changes
	// them); guarded by mu.
	bootstrap, external []config.Mapping
}

// listener is one local address proxying to one broker.
type listener struct {
	net.Listener
	upstream string // "" for the SNI listener: the SNI step picks each connection's broker
	mapping  string // the bootstrap mapping it serves (mappingKey), "" for a dynamic one
}

// sniListener is the SNI listener's mapping: no configured mapping has it.
const sniListener = "sni"

// Listener describes a running listener.
type Listener struct {
	Upstream string
	Addr     net.Addr
}

// New builds a server from a validated configuration. Nothing listens
// until Start.
func New(cfg config.Config, log *slog.Logger, m *metrics.Metrics) (*Server, error) {
	// The listener's certificate first: a bad one should fail before the
	// dialer loads credentials and fetches tokens (and leaves nothing to
	// close).
	listenTLS, err := listenerTLS(cfg.Proxy.TLS, log)
	if err != nil {
		return nil, err
	}
	ups, err := newUpstreams(cfg.Kafka, log, m)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, metrics: m, sessions: map[*proxy.Session]*listener{}, drained: map[*proxy.Session]bool{}, upstreams: ups,
		bootstrap: cfg.Proxy.BootstrapServers, external: cfg.Proxy.ExternalServers}
	if cfg.Kafka.ForwardProxy != "" {
		log.Info("broker connections go through a forward proxy", "forward_proxy", cfg.Kafka.RedactedForwardProxy())
	}
	for _, w := range cfg.Warnings() {
		log.Warn("setting ignored", "why", w)
	}
	if cfg.Proxy.ProducerAcks0Disabled {
		// A hint to skip the acks check in the proxy we replace; acting on
		// it would lose every record an acks=0 producer sends.
		log.Info("--producer-acks-0-disabled has no effect: acks=0 produce requests are always relayed (the acks check costs nothing measurable)")
	}
	s.closeDial = ups.close
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.topo, err = topology.New(cfg.Proxy, s.listen, log)
	if err != nil {
		s.closeDial()
		return nil, err
	}
	var sameCert func() *x509.Certificate
	if cfg.Kafka.TLS.SameClientCertEnable {
		sameCert = ups.base.ClientCertificate
	}
	gw, err := newGatewayServer(cfg.Proxy.Gateway, log)
	if err != nil {
		s.closeDial()
		return nil, err
	}
	if gw != nil {
		closeDial := s.closeDial
		s.closeDial = func() { closeDial(); gw.close() }
	}
	if s.admission, err = admissionSteps(cfg.Proxy, listenTLS, sameCert, gw, m, log); err != nil {
		s.closeDial()
		return nil, err
	}
	if step := s.sniStep(listenTLS); step != nil {
		s.admission = append(s.admission, *step) // after TLS, which learnt the name
	}
	if !cfg.Auth.Local.Enable {
		// The principal is final after admission: refuse one without a
		// required upstream identity before the dial. (Local SASL
		// refuses it in the SASL exchange instead, through Gate.Admit.)
		s.admission = append(s.admission, ups.step())
	}
	var stages []pipeline.Stage
	if cfg.Auth.Local.Enable {
		if s.localAuth, err = clientauth.New(cfg.Auth.Local, log, m); err != nil {
			s.closeDial()
			return nil, err
		}
		s.localAuth.Admit(ups.admit) // a principal without a required upstream identity fails SASL
		closeDial := s.closeDial
		s.closeDial = func() { closeDial(); s.localAuth.Close() } // stops a plugin process
		stages = append(stages, s.localAuth.Stage(log))
	}
	if cfg.Audit.Log != "" {
		if s.trail, err = audit.Open(cfg.Audit.Log, cfg.Audit.Allowed); err != nil {
			s.closeDial()
			return nil, err
		}
		closeDial := s.closeDial
		s.closeDial = func() { closeDial(); _ = s.trail.Close() }
	}
	if cfg.ACL.Enabled() {
		if s.acls, err = openACLs(cfg.ACL, log); err != nil {
			s.closeDial()
			return nil, err
		}
		stages = append(stages, policy.ACLs(s.acls, log, s.trail, policy.CountDenials(m.ACLDenied)))
	}
	chain, err := pipeline.NewChain(append(stages,
		policy.ForbiddenKeys(cfg.Proxy.ForbiddenAPIKeys),
		rewrite.Versions(),
		rewrite.Addresses(s.topo),
	)...)
	if err != nil {
		s.closeDial()
		return nil, err
	}
	reqBuf := max(cfg.Proxy.RequestBufferSize, proxy.MinRequestBufferSize)
	respBuf := max(cfg.Proxy.ResponseBufferSize, 64)
	s.opts = proxy.Options{
		MaxFrameSize:       cfg.Proxy.MaxFrameSize,
		MaxOpenRequests:    cfg.Kafka.MaxOpenRequests,
		RequestBufferSize:  reqBuf,
		ResponseBufferSize: respBuf,
		ReadTimeout:        cfg.Kafka.ReadTimeout,
		WriteTimeout:       cfg.Kafka.WriteTimeout,
		Stages:             chain,
		Buffers:            wire.NewBufferPool(32 << 10),
		RequestReaders:     proxy.NewReaderPool(reqBuf),
		ResponseReaders:    proxy.NewReaderPool(respBuf),
		MinSessionLifetime: cfg.Kafka.ReauthMinLifetime,
		FirstResponseHint:  plaintextHint(cfg.Kafka),
		BrokerWatch:        proxy.NewBrokerWatch(), // takes nothing until a session arms it
	}
	return s, nil
}

// plaintextHint is the session's hint for a broker that hangs up on its
// first request, when the proxy dials the brokers without TLS.
func plaintextHint(k config.Kafka) string {
	if k.TLS.Enable {
		return ""
	}
	return upstream.PlaintextHint
}

// Topology is the broker address map (for tests and the status page).
func (s *Server) Topology() *topology.Topology { return s.topo }

// Start binds the bootstrap listeners. An address that cannot be bound is
// an error, since clients are configured to use it.
func (s *Server) Start() error {
	for _, m := range s.cfg.Proxy.BootstrapServers {
		addr, err := s.listenMapping(m)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listen %s for broker %s: %w", m.Listen, m.Upstream, err)
		}
		s.topo.Bound(m, addr)
	}
	if sni := s.cfg.Proxy.SNI; sni.Enabled() {
		addr, err := s.listenAs("", sni.ListenAddress, sniListener)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listen %s for SNI routing: %w", sni.ListenAddress, err)
		}
		s.topo.SNIBound(addr)
	}
	// Always: without a handler, SIGHUP would kill the process.
	s.watchDone = make(chan struct{})
	hup := hangups() // before Start returns: a SIGHUP from now on reloads
	go func() {
		defer close(s.watchDone)
		watchHangups(s.ctx, s.acls, s.cfg.ACL.Refresh, hup, s.log, append([]func(){tlsconf.RecheckAll, s.reopenTrail, s.upstreams.reload}, s.onHangup...)...)
	}()
	return nil
}

// OnHangup adds fn to what SIGHUP runs (the CLI's configuration reload).
// Call it before Start.
func (s *Server) OnHangup(fn func()) { s.onHangup = append(s.onHangup, fn) }

// Listeners lists the running listeners.
func (s *Server) Listeners() []Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, Listener{Upstream: l.upstream, Addr: l.Addr()})
	}
	return out
}

// listen starts a listener on local that proxies to broker; it is also the
// topology's hook for dynamic listeners.
func (s *Server) listen(broker, local string) (net.Addr, error) {
	return s.listenAs(broker, local, "")
}

// listenMapping starts the listener of a bootstrap mapping.
func (s *Server) listenMapping(m config.Mapping) (net.Addr, error) {
	return s.listenAs(m.Upstream, m.Listen, mappingKey(m))
}

func (s *Server) listenAs(broker, local, mapping string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errors.New("server is shutting down")
	}
	lc := net.ListenConfig{KeepAlive: s.cfg.Proxy.ListenerKeepAlive}
	if s.cfg.Proxy.ListenerKeepAlive == 0 {
		lc.KeepAlive = -1
	}
	ln, err := lc.Listen(context.Background(), "tcp", local)
	if err != nil {
		return nil, err
	}
	l := &listener{Listener: ln, upstream: broker, mapping: mapping}
	s.listeners = append(s.listeners, l)
	s.wg.Add(1)
	go s.accept(l)
	if broker == "" {
		s.log.Info("listening", "listen", ln.Addr().String(), "routes", "by SNI name")
	} else {
		s.log.Info("listening", "listen", ln.Addr().String(), "broker", broker)
	}
	return ln.Addr(), nil
}

// accept serves one listener until it is closed.
func (s *Server) accept(l *listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and similar: wait, don't spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "listen", l.Addr().String(), "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go s.serve(l, conn)
	}
}

// serve admits one client connection, dials its broker and hands both to
// a session.
func (s *Server) serve(l *listener, conn net.Conn) {
	defer s.wg.Done()
	start := time.Now()
	log := s.log.With("conn", s.connID.Add(1), "remote", conn.RemoteAddr().String(), "listener", l.Addr().String())
	// A connection is counted for its broker; on the SNI listener that
	// is known once admitted (one refused before is counted for "sni").
	var bm *metrics.Broker
	opened := func(broker string) {
		bm = s.metrics.Broker(broker)
		bm.Opened()
		log = log.With("broker", broker)
	}
	if l.upstream != "" {
		opened(l.upstream)
	}
	handedOff := false
	reason := "shutdown" // why the connection ends before its session; each return below says
	defer func() {
		if !handedOff {
			if bm == nil {
				opened(sniListener)
			}
			bm.Closed(reason)
		}
	}()
	c := pipeline.NewClient(conn, l.upstream)
	defer func() {
		if !handedOff {
			c.End()
		}
	}()
	if err := pipeline.Admit(s.ctx, s.admission, c); err != nil {
		level := slog.LevelWarn
		if errors.Is(err, connfilter.ErrRefused) {
			level = slog.LevelDebug // counted, and summarised by the filter
		}
		log.Log(context.Background(), level, "connection closed", "reason", err.Error())
		ev := audit.Event{Event: audit.ConnectionRejected, Listener: l.Addr().String(), Client: c.Remote.String(), Reason: err.Error()}
		if c.Principal != pipeline.Anonymous {
			ev.Principal = c.Principal // refused for who it is (a certificate principal)
		}
		s.trail.Record(ev)
		_ = c.Conn.Close()
		reason = "refused"
		return
	}
	if bm == nil {
		opened(c.Broker) // routed by the SNI step
	}
	if c.Remote.String() != conn.RemoteAddr().String() {
		log = log.With("client", c.Remote.String()) // behind a balancer (PROXY protocol)
	}
	log.Debug("connection admitted", "principal", c.Principal)
	dialer := s.upstreams.dialer(c.Principal)
	up, err := dialer.Dial(s.ctx, c.Broker)
	if err != nil {
		log.Error("connection closed: cannot reach broker", "err", err)
		_ = c.Conn.Close()
		reason = "dial-failed"
		return
	}
	if s.localAuth != nil {
		if err := s.localAuth.Authenticate(s.ctx, c, log, s.brokerVersions(c, up)); err != nil {
			level := slog.LevelInfo // the client went away
			reason = "client"
			if errors.Is(err, clientauth.ErrFailed) {
				level, reason = slog.LevelWarn, "auth-failed"
			}
			log.Log(context.Background(), level, "connection closed: not authenticated", "reason", err.Error())
			if level == slog.LevelWarn {
				s.trail.Record(audit.Event{Event: audit.AuthFailure, Listener: l.Addr().String(), Client: c.Remote.String(),
					Mechanism: mechanismOf(c), Reason: err.Error()})
			}
			_ = c.Conn.Close()
			_ = up.Close()
			return
		}
		if up, err = s.upstreams.redial(s.ctx, c.Principal, c.Broker, dialer, up); err != nil {
			log.Error("connection closed: cannot reach broker as the client's upstream identity", "principal", c.Principal, "err", err)
			_ = c.Conn.Close()
			reason = "dial-failed"
			return
		}
	}
	log = log.With("principal", c.Principal)
	if s.localAuth != nil {
		s.trail.Record(audit.Event{Event: audit.AuthSuccess, Listener: l.Addr().String(), Client: c.Remote.String(),
			Principal: c.Principal, Mechanism: mechanismOf(c)})
	}
	opts := s.opts
	if up.Reauthenticate != nil {
		opts.Reauthenticate = up.Reauthenticate
		log = log.With("mechanism", up.Mechanism)
	}
	sess := proxy.New(c, up, opts, log, bm)
	if !s.track(sess, l) {
		sess.Close()
		return
	}
	// The session runs on a fresh goroutine: this one's stack grew during
	// the dial and handshakes, and an idle session should not keep that.
	handedOff = true
	s.wg.Add(1)
	go s.run(sess, c, bm, log, start)
}

// brokerVersions answers a client's ApiVersions before it authenticated:
// the proxy asks the broker itself on the dialled connection (with the
// client's KIP-511 software name and version, so broker metrics stay
// true) and relays the answer through the response stages, as the session
// would have relayed the broker's answer to the client's request.
func (s *Server) brokerVersions(c *pipeline.Client, up *upstream.Conn) clientauth.Versions {
	return func(ctx context.Context, req *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error) {
		r, err := upstream.NewConnRoundTripper(up.Conn, s.cfg.Kafka.ClientID).RoundTrip(ctx, req)
		if err != nil {
			return nil, err
		}
		resp := r.(*kmsg.ApiVersionsResponse)
		ex := pipeline.NewExchange(c, req.Key(), req.GetVersion(), 0, nil)
		if route := s.opts.Stages.Route(ex.Key, ex.Version); route.Response() {
			if _, err := s.opts.Stages.RunResponse(route, ex, resp); err != nil {
				return nil, err
			}
		}
		return resp, nil
	}
}

// run relays one session until it ends and logs why, once.
func (s *Server) run(sess *proxy.Session, c *pipeline.Client, bm *metrics.Broker, log *slog.Logger, start time.Time) {
	defer s.wg.Done()
	defer c.End()
	err := sess.Run()
	s.untrack(sess)
	bm.Closed(s.closeReason(sess, err))
	if err != nil {
		level := slog.LevelWarn
		switch {
		case errors.Is(err, topology.ErrNoMapping):
			level = slog.LevelError // needs the operator: the message names the flag to add
		case errors.Is(err, proxy.ErrBrokerClosed):
			level = slog.LevelInfo // routine: brokers close idle connections
		}
		log.Log(context.Background(), level, "connection closed", "reason", err.Error(), "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	log.Debug("connection closed", "duration", time.Since(start).Round(time.Millisecond))
}

// closeReason names why a session ended, for proxy_connections_closed_total.
func (s *Server) closeReason(sess *proxy.Session, err error) string {
	s.mu.Lock()
	closing, drained := s.closing, s.drained[sess]
	delete(s.drained, sess)
	s.mu.Unlock()
	switch {
	case closing:
		return "shutdown"
	case drained:
		return "listener-removed"
	case err == nil:
		return "client"
	case errors.Is(err, proxy.ErrBrokerClosed):
		return "broker"
	case errors.Is(err, topology.ErrNoMapping):
		return "no-mapping"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	return "error"
}

func (s *Server) track(sess *proxy.Session, l *listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = l
	return true
}

func (s *Server) untrack(sess *proxy.Session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// Serve runs until ctx is cancelled, then shuts down within the drain
// timeout.
func (s *Server) Serve(ctx context.Context) error {
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Proxy.DrainTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// Shutdown stops accepting, lets every session deliver the responses it
// owes, and returns when all are done or ctx ends (then it closes the
// rest).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	sessions := make([]*proxy.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	s.closeListeners()
	s.cancel()
	for _, sess := range sessions {
		sess.Drain()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("drain: %w", ctx.Err())
		s.mu.Lock()
		for sess := range s.sessions {
			sess.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.opts.BrokerWatch.Close() // every session is done
	if s.watchDone != nil {
		<-s.watchDone // s.cancel ended it
	}
	s.closeDial()
	return err
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		_ = l.Close()
	}
}

// mechanismOf is the SASL mechanism the client used or tried.
func mechanismOf(c *pipeline.Client) string {
	if c.SASL == nil {
		return ""
	}
	return c.SASL.Mechanism()
}
