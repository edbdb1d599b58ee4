// Package upstream dials brokers: TCP, then TLS, then SASL, and
// re-authenticates long-lived connections before the broker's session ends
// (KIP-368). It is the only place that holds the broker-side secrets.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/gateway"
	"github.com/kafka-proxy/kafka-proxy/internal/idtoken"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// MechanismTLS labels TLS-layer authentication (client certificates,
// broker certificate checks) in hooks and errors.
const MechanismTLS = "TLS"

// Conn is an upstream connection ready for Kafka requests.
type Conn struct {
	net.Conn
	// SessionLifetime is the SASL session lifetime the broker announced
	// (KIP-368); zero means the session does not expire.
	SessionLifetime time.Duration
	// AuthenticatedAt is when the broker announced SessionLifetime: the
	// session's clock, which runs from there, not from when a proxy
	// session starts using the connection.
	AuthenticatedAt time.Time
	// Mechanism is the SASL mechanism used, empty without SASL.
	Mechanism string
	// APIVersions is the broker's ApiVersions answer when the dialer
	// asked for one (SASL or a client certificate configured), else nil.
	APIVersions *kmsg.ApiVersionsResponse
	// Reauthenticate renews the SASL session over rt (KIP-368) and
	// returns the next lifetime; nil when the session does not expire.
	Reauthenticate func(ctx context.Context, rt RoundTripper) (time.Duration, error)
}

// ErrRoundTripAborted is wrapped by a RoundTripper whose connection closed
// under the exchange (the client left): the exchange did not fail.
var ErrRoundTripAborted = errors.New("connection closed during the exchange")

// RoundTripper sends one request on a live connection and returns its
// response. The proxy session implements it for re-authentication, so the
// exchange is ordered with the client's own requests.
type RoundTripper interface {
	RoundTrip(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// Hooks observe upstream authentication (implemented by internal/metrics).
// mechanism is the SASL mechanism, or MechanismTLS when the TLS layer
// (client certificate, broker certificate) decided.
type Hooks interface {
	AuthSucceeded(broker, mechanism string)
	AuthFailed(broker, mechanism string)
	Reauthenticated(broker, mechanism string)
	// Dialed observes each dial: how long it took to a usable connection
	// (TCP, TLS, SASL), and why it failed ("" when it did not).
	Dialed(broker string, took time.Duration, failure string)
}

// NopHooks observes nothing.
type NopHooks struct{}

func (NopHooks) AuthSucceeded(string, string)         {}
func (NopHooks) AuthFailed(string, string)            {}
func (NopHooks) Dialed(string, time.Duration, string) {}
func (NopHooks) Reauthenticated(string, string)       {}

// Dialer connects to brokers with the configured transport and security.
type Dialer struct {
	cfg   config.Kafka
	log   *slog.Logger
	hooks Hooks
	// gateway, if set, runs the gateway handshake on each new connection
	// (--auth-gateway-client-*); gatewayHost is its plugin.
	gateway     func(ctx context.Context, conn net.Conn) error
	gatewayHost *authplugin.Host
	dialer      net.Dialer
	tls         *tlsconf.Client // nil without TLS
	mech        sasl.Mechanism  // nil without SASL
	secrets     *secrets
	now         func() time.Time
	dialTo      map[string]string // broker host:port (lower case) -> address dialled
	out         contextDialer     // d.dialer, or through --forward-proxy

	// authVersions remembers each broker's SaslAuthenticate version from
	// Dial for Reauthenticate, which has no ApiVersions of its own.
	authVersions sync.Map // broker -> int16
}

// New builds a Dialer from the broker-side configuration. It loads and
// checks all material now — certificate files, key passwords, SASL
// credentials, a first token — so a mistake stops the proxy at start-up
// with a message naming the setting, not at the first client connection.
func New(cfg config.Kafka, log *slog.Logger, hooks Hooks) (*Dialer, error) {
	if hooks == nil {
		hooks = NopHooks{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.SASL = cfg.SASL.Effective()
	d := &Dialer{cfg: cfg, log: log, hooks: hooks, secrets: &secrets{}, now: time.Now, dialTo: map[string]string{}}
	for _, m := range cfg.DialAddressMappings {
		d.dialTo[strings.ToLower(m.From)] = m.To
	}
	d.dialer = net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: cfg.KeepAlive}
	if cfg.KeepAlive == 0 {
		d.dialer.KeepAlive = -1
	}
	out, err := newForwardDialer(cfg.ForwardProxy, &d.dialer)
	if err != nil {
		return nil, err
	}
	d.out = out
	if cfg.TLS.Enable {
		c, err := newTLSClient(cfg.TLS, log, d.secrets)
		if err != nil {
			return nil, err
		}
		d.tls = c
	}
	if cfg.SASL.Enable {
		m, err := loadMechanism(cfg, d.secrets, d.now, log)
		if err != nil {
			return nil, err
		}
		d.mech = m
	}
	if g := cfg.Gateway; g.Enable {
		src, host, err := gatewayTokens(g, d.now, log)
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		d.gatewayHost = host
		d.gateway = func(ctx context.Context, conn net.Conn) error {
			tok, err := src.Token(ctx)
			if err != nil {
				return fmt.Errorf("gateway token: %w", err)
			}
			d.secrets.add(tok)
			return gateway.Handshake(conn, g.Magic, g.Method, tok, g.Timeout)
		}
	}
	return d, nil
}

func newTLSClient(t config.TLS, log *slog.Logger, sec *secrets) (*tlsconf.Client, error) {
	minVersion, err := tlsconf.ParseVersion(t.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("tls min version: %w", err)
	}
	suites, err := tlsconf.ParseCipherSuites(t.CipherSuites)
	if err != nil {
		return nil, fmt.Errorf("tls cipher suites: %w", err)
	}
	password := []byte(t.ClientKeyPassword)
	if t.ClientKeyPasswordFile != "" {
		if password, err = readSecretFile(t.ClientKeyPasswordFile, "tls client key password file"); err != nil {
			return nil, err
		}
	}
	sec.add(string(password))
	c, err := tlsconf.NewClient(tlsconf.ClientOptions{
		CAFile: t.CAChainCertFile, SystemPool: t.SystemCertPool,
		CertFile: t.ClientCertFile, KeyFile: t.ClientKeyFile, KeyPassword: password,
		InsecureSkipVerify: t.InsecureSkipVerify, ServerName: t.ServerName,
		MinVersion: minVersion, CipherSuites: suites, Refresh: t.Refresh, Log: log,
	})
	if err != nil {
		return nil, err
	}
	if leaf := c.ClientCertificate(); leaf != nil {
		now := time.Now()
		if now.After(leaf.NotAfter) {
			return nil, fmt.Errorf("tls client certificate %s (%q) expired at %s", t.ClientCertFile, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(leaf.NotBefore) {
			return nil, fmt.Errorf("tls client certificate %s (%q) is not valid before %s", t.ClientCertFile, leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return c, nil
}

// Dial connects to broker (host:port) and returns a connection on which the
// proxy may forward client requests: TCP, TLS if enabled, then — when SASL
// is enabled or a client certificate is configured — ApiVersions (which
// also surfaces a TLS 1.3 client-certificate rejection here rather than at
// the client's first request) and the SASL exchange.
func (d *Dialer) Dial(ctx context.Context, broker string) (*Conn, error) {
	start := time.Now()
	up, err := d.dial(ctx, broker)
	d.hooks.Dialed(broker, time.Since(start), DialFailure(err))
	return up, err
}

// gatewayTokens is where the client side of the gateway handshake gets its
// tokens: the built-in jwt method's file or command, else a token-provider
// plugin (returned, to be closed with the dialer).
func gatewayTokens(g config.Gateway, now func() time.Time, log *slog.Logger) (tokenSource, *authplugin.Host, error) {
	if g.Command == config.BuiltinJWT {
		if g.JWT.TokenFile != "" {
			return &fileToken{path: g.JWT.TokenFile}, nil, nil
		}
		return &commandToken{command: g.JWT.TokenCommand, timeout: g.Timeout, now: now}, nil, nil
	}
	if idtoken.IsProvider(g.Command) {
		ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
		defer cancel()
		p, err := idtoken.NewProvider(ctx, g.Command, g.Params, log)
		if err != nil {
			return nil, nil, fmt.Errorf("--auth-gateway-client-command: %w", err)
		}
		return p, nil, nil
	}
	h, err := authplugin.NewHost(authplugin.TokenProvider, authplugin.Config{Command: g.Command, Params: g.Params, Timeout: g.Timeout, LogLevel: g.LogLevel}, log.With("plugin", "gateway-client"))
	if err != nil {
		return nil, nil, fmt.Errorf("--auth-gateway-client-command: %w", err)
	}
	return authplugin.NewProvider(h), h, nil
}

// DialFailure names why a dial failed, in a few words fit for a metric
// label: timeout, refused, dns, tls, auth or other ("" for no error).
func DialFailure(err error) string {
	var auth *AuthError
	var dns *net.DNSError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &auth) && auth.Mechanism == MechanismTLS:
		return "tls"
	case errors.As(err, &auth):
		return "auth"
	case errors.Is(err, gateway.ErrRefused):
		return "gateway"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.As(err, &dns):
		return "dns"
	}
	return "other"
}

func (d *Dialer) dial(ctx context.Context, broker string) (*Conn, error) {
	if d.cfg.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.DialTimeout)
		defer cancel()
	}
	addr := broker
	if len(d.dialTo) > 0 {
		if to, ok := d.dialTo[strings.ToLower(broker)]; ok {
			addr = to // --dial-address-mapping; TLS below still verifies the broker's own name
		}
	}
	raw, err := d.out.DialContext(ctx, "tcp", addr)
	if err != nil {
		if addr != broker {
			return nil, fmt.Errorf("dial broker %s at %s (--dial-address-mapping): %w", broker, addr, err)
		}
		return nil, fmt.Errorf("dial broker %s: %w", broker, err)
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		if d.cfg.ConnectionReadBufferSize > 0 {
			_ = tc.SetReadBuffer(d.cfg.ConnectionReadBufferSize)
		}
		if d.cfg.ConnectionWriteBufferSize > 0 {
			_ = tc.SetWriteBuffer(d.cfg.ConnectionWriteBufferSize)
		}
	}
	conn := raw
	if d.tls != nil {
		host, _, err := net.SplitHostPort(broker)
		if err != nil {
			host = broker
		}
		tc := tls.Client(raw, d.tls.Config(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, d.tlsFailure(broker, err)
		}
		conn = tc
	}
	if d.gateway != nil {
		if err := d.gateway(ctx, conn); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("broker %s: %w", broker, scrubErr(err, d.secrets.all()))
		}
	}
	up := &Conn{Conn: conn}
	clientCert := d.tls != nil && d.tls.ClientCertificate() != nil
	if d.mech == nil && !clientCert {
		return up, nil
	}
	rt := &connRoundTripper{conn: conn, clientID: d.cfg.ClientID}
	versions, err := apiVersions(ctx, rt)
	if err != nil {
		_ = conn.Close()
		if d.tls != nil && isTLSAlert(err) {
			return nil, d.tlsFailure(broker, err)
		}
		if d.tls == nil && (errors.Is(err, errClosedByBroker) || errors.Is(err, errImplausibleSize)) {
			return nil, fmt.Errorf("broker %s: %w; %s", broker, err, PlaintextHint)
		}
		return nil, fmt.Errorf("broker %s: %w", broker, err)
	}
	up.APIVersions = versions
	if d.mech == nil {
		d.hooks.AuthSucceeded(broker, MechanismTLS)
		return up, nil
	}
	v := authVersion(versions)
	d.authVersions.Store(broker, v)
	lifetime, err := d.exchange(ctx, broker, rt, v)
	if err != nil {
		_ = conn.Close()
		if d.tls != nil && isTLSAlert(err) {
			return nil, d.tlsFailure(broker, err)
		}
		d.hooks.AuthFailed(broker, d.mech.Name())
		return nil, err
	}
	d.hooks.AuthSucceeded(broker, d.mech.Name())
	up.SessionLifetime, up.Mechanism, up.AuthenticatedAt = lifetime, d.mech.Name(), d.now()
	if lifetime > 0 {
		up.Reauthenticate = func(ctx context.Context, rt RoundTripper) (time.Duration, error) {
			return d.Reauthenticate(ctx, broker, rt)
		}
	}
	d.log.Debug("upstream authenticated", "broker", broker, "mechanism", up.Mechanism, "session_lifetime", lifetime)
	return up, nil
}

// ClientCertificate is the proxy's current client certificate towards the
// brokers (it follows --tls-refresh), nil without one.
func (d *Dialer) ClientCertificate() *x509.Certificate {
	if d.tls == nil {
		return nil
	}
	return d.tls.ClientCertificate()
}

// PlaintextHint follows a broker that hung up on (or answered with
// non-Kafka bytes) the first request of a plaintext connection: what a
// TLS-only listener does.
const PlaintextHint = "the broker's listener may require TLS: set --tls-enable (and --tls-ca-chain-cert-file for a private CA)"

// isTLSAlert reports a TLS alert from the broker, e.g. a rejected client
// certificate, which TLS 1.3 delivers with the first read after the
// handshake. Over TCP crypto/tls reports a received alert as a
// "remote error" (tls.AlertError is for QUIC only).
func isTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// tlsFailure turns a handshake error into an AuthError with a hint.
func (d *Dialer) tlsFailure(broker string, err error) error {
	d.hooks.AuthFailed(broker, MechanismTLS)
	var leaf = d.tls.ClientCertificate()
	hint, brokerMsg := explainTLS(err, leaf, d.now())
	if hint != "" {
		err = fmt.Errorf("%s: %w", hint, err)
	}
	return &AuthError{Broker: broker, Mechanism: MechanismTLS, BrokerMessage: brokerMsg, Err: scrubErr(err, d.secrets.all())}
}

// Reauthenticate runs the SASL exchange again over rt before the session
// expires (KIP-368), with fresh credentials, returning the new session
// lifetime. The broker requires the same principal, which static and
// file-based credentials keep.
func (d *Dialer) Reauthenticate(ctx context.Context, broker string, rt RoundTripper) (time.Duration, error) {
	if d.mech == nil {
		return 0, errors.New("re-authentication needs SASL, which is not enabled")
	}
	v := int16(1)
	if got, ok := d.authVersions.Load(broker); ok {
		v = got.(int16)
	}
	lifetime, err := d.exchange(ctx, broker, rt, v)
	if err != nil {
		// A renewal cut short because the client left is not an
		// authentication failure: don't page anyone for it.
		if !errors.Is(err, ErrRoundTripAborted) && !errors.Is(err, context.Canceled) {
			d.hooks.AuthFailed(broker, d.mech.Name())
		}
		return 0, fmt.Errorf("re-authentication: %w", err)
	}
	d.hooks.Reauthenticated(broker, d.mech.Name())
	d.log.Debug("upstream re-authenticated", "broker", broker, "mechanism", d.mech.Name(), "session_lifetime", lifetime)
	return lifetime, nil
}

// Close releases the mechanism's resources. File reloads happen on the
// dialling goroutine, so there are no watchers to stop.
func (d *Dialer) Close() error {
	if c, ok := d.mech.(sasl.ClosingMechanism); ok {
		c.Close()
	}
	if d.gatewayHost != nil {
		d.gatewayHost.Close()
	}
	return nil
}

// loadMechanism builds the SASL mechanism, fetching a first token within
// the dial timeout, for New and Check alike.
func loadMechanism(cfg config.Kafka, sec *secrets, now func() time.Time, log *slog.Logger) (sasl.Mechanism, error) {
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m, err := newMechanism(ctx, cfg.SASL, sec, now, cfg.TLS.Enable, log)
	if err != nil {
		return nil, fmt.Errorf("sasl %s: %w", cfg.SASL.NormalizedMethod(), scrubErr(err, sec.all()))
	}
	return m, nil
}

// Check loads what New loads (forward proxy, TLS material, SASL
// credentials, a first token) and reports every problem, not only the
// first, for kafka-proxy validate.
func Check(cfg config.Kafka, log *slog.Logger) []error {
	cfg.SASL = cfg.SASL.Effective()
	var errs []error
	var nd net.Dialer
	if _, err := newForwardDialer(cfg.ForwardProxy, &nd); err != nil {
		errs = append(errs, err)
	}
	sec := &secrets{}
	if cfg.TLS.Enable {
		if _, err := newTLSClient(cfg.TLS, log, sec); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.SASL.Enable {
		m, err := loadMechanism(cfg, sec, time.Now, log)
		if err != nil {
			errs = append(errs, err)
		} else if c, ok := m.(sasl.ClosingMechanism); ok {
			c.Close()
		}
	}
	if g := cfg.Gateway; g.Enable {
		src, host, err := gatewayTokens(g, time.Now, log)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
			_, err = src.Token(ctx)
			cancel()
		}
		if host != nil {
			host.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--auth-gateway-client: %w", err))
		}
	}
	return errs
}
