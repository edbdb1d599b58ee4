// Package clientauth terminates SASL on the proxy's listeners
// (--auth-local-enable): a client authenticates to the proxy exactly as
// to a Kafka broker before anything it sends reaches one, and keeps its
// session valid by re-authenticating (KIP-368). The SASL protocol itself
// is internal/auth; this package puts it on the request path in two
// halves:
//
//   - Authenticate runs once per connection, after the broker is dialled
//     and before the session starts: it answers ApiVersions (with the
//     broker's versions, asked by the proxy itself), SaslHandshake,
//     SaslAuthenticate and the raw tokens that follow a SaslHandshake v0,
//     and closes the connection on anything else. Not one byte of the
//     client's reaches the broker before the client authenticated.
//   - Stage is the per-request half: re-authentication answered locally,
//     and a session past its lifetime closed at its next request.
package clientauth

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/authplugin"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/jwt"
	"github.com/kafka-proxy/kafka-proxy/internal/ldapauth"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/users"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// Bounds on an unauthenticated client.
const (
	// Timeout bounds the whole authentication, from the broker dial to
	// the last SASL answer: an unauthenticated client holds a broker
	// connection, so it may not hold it long.
	Timeout = 30 * time.Second
	// MaxFrame bounds a request before authentication, as Kafka's
	// sasl.server.max.receive.size (512 KiB) does.
	MaxFrame = 512 << 10
)

// Results counted by Hooks.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	// ResultReauthenticated is a KIP-368 re-authentication that renewed
	// a session.
	ResultReauthenticated = "reauthenticated"
	// MechanismUnknown labels a handshake for a mechanism not offered: the
	// client's string is not a label (it is the client's to choose).
	MechanismUnknown = "unknown"
)

// ErrFailed marks a connection closed because the client failed to
// authenticate (wrong credentials, a request before authentication, a
// protocol violation), as opposed to one that went away.
var ErrFailed = errors.New("client authentication failed")

// Hooks observe client authentications (implemented by internal/metrics).
type Hooks interface {
	ClientAuth(listener, mechanism, result string)
}

type nopHooks struct{}

func (nopHooks) ClientAuth(string, string, string) {}

// Versions answers a client's ApiVersions before authentication: the
// broker's answer at the request's version, as the stages relay it.
type Versions func(ctx context.Context, req *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error)

// Gate is local SASL termination for one server's listeners.
type Gate struct {
	cfg    auth.Config
	log    *slog.Logger
	hooks  Hooks
	plugin *authplugin.Host // nil without --auth-local-command
	admit  func(principal string) error
}

// New builds the mechanisms of cfg over their verifiers: PLAIN over the
// plugin, the directory or the users file (the first configured); SCRAM
// over the users file; OAUTHBEARER over the plugin or the key set.
func New(cfg config.LocalAuth, log *slog.Logger, hooks Hooks) (*Gate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if hooks == nil {
		hooks = nopHooks{}
	}
	g := &Gate{log: log, hooks: hooks}
	mechs, err := g.mechanisms(cfg)
	if err != nil {
		g.Close()
		return nil, err
	}
	g.cfg = auth.Config{Mechanisms: mechs, SessionLifetime: cfg.SessionLifetime}
	if err := g.cfg.Validate(); err != nil {
		g.Close()
		return nil, fmt.Errorf("local sasl: %w", err)
	}
	log.Info("local SASL enabled", "mechanisms", cfg.NormalizedMechanisms(), "session_lifetime", cfg.SessionLifetime)
	return g, nil
}

// Admit sets a last check on a principal whose credentials were good: an
// error fails the authentication as bad credentials do (the error in the
// SaslAuthenticate answer, then a close). Call it before serving.
func (g *Gate) Admit(fn func(principal string) error) { g.admit = fn }

// admitted runs the Admit check on the principal just authenticated.
func (a *attempt) admitted() error {
	if a.g.admit == nil {
		return nil
	}
	return a.g.admit("User:" + a.srv.Identity().Principal)
}

// Close stops the plugin, if any.
func (g *Gate) Close() {
	if g.plugin != nil {
		g.plugin.Close()
	}
}

func (g *Gate) mechanisms(cfg config.LocalAuth) ([]auth.Mechanism, error) {
	var store *users.Store
	if cfg.UsersFile != "" {
		var err error
		if store, err = users.Open(cfg.UsersFile, 0, g.log); err != nil {
			return nil, err
		}
	}
	if cfg.Plugin.Command != "" {
		kind := authplugin.PasswordAuthenticator
		if cfg.Has(config.LocalOAuthBearer) {
			kind = authplugin.TokenInfo
		}
		var err error
		g.plugin, err = authplugin.NewHost(kind, authplugin.Config{Command: cfg.Plugin.Command, Params: cfg.Plugin.Params,
			Timeout: cfg.Plugin.Timeout, LogLevel: cfg.Plugin.LogLevel}, g.log)
		if err != nil {
			return nil, fmt.Errorf("local sasl: %w", err)
		}
	}
	var mechs []auth.Mechanism
	for _, name := range cfg.NormalizedMechanisms() {
		switch name {
		case config.LocalPlain:
			v, source, err := g.passwordVerifier(cfg, store)
			if err != nil {
				return nil, err
			}
			g.log.Info("local SASL: PLAIN passwords checked by " + source)
			mechs = append(mechs, auth.NewPlain(v))
		case config.LocalScramSHA256, config.LocalScramSHA512:
			m, err := auth.NewScram(name, store)
			if err != nil {
				return nil, err
			}
			mechs = append(mechs, m)
		case config.LocalOAuthBearer:
			if g.plugin != nil {
				g.log.Info("local SASL: OAUTHBEARER tokens checked by the token-info plugin")
				mechs = append(mechs, auth.NewOAuthBearer(authplugin.NewTokens(g.plugin, cfg.JWT.PrincipalClaim)))
				continue
			}
			v, err := tokenVerifier(cfg.JWT, g.log)
			if err != nil {
				return nil, err
			}
			mechs = append(mechs, auth.NewOAuthBearer(v))
		default:
			return nil, fmt.Errorf("local sasl: mechanism %q is not supported", name)
		}
	}
	return mechs, nil
}

// passwordVerifier is PLAIN's back end, in the order the configuration
// check allows only one of: plugin, directory, users file.
func (g *Gate) passwordVerifier(cfg config.LocalAuth, store *users.Store) (auth.PasswordVerifier, string, error) {
	switch {
	case g.plugin != nil:
		return authplugin.NewPasswords(g.plugin), "the password-authenticator plugin", nil
	case len(cfg.LDAP.URLs) > 0:
		d := cfg.LDAP
		var bindPassword string
		if d.BindPasswordFile != "" {
			b, err := os.ReadFile(d.BindPasswordFile)
			if err != nil {
				return nil, "", fmt.Errorf("local sasl: ldap bind password: %w", err)
			}
			bindPassword = strings.TrimRight(string(b), "\r\n")
		}
		v, err := ldapauth.New(ldapauth.Config{URLs: d.URLs, UserDN: d.UserDN, UserAttr: d.UserAttr, UPNDomain: d.UPNDomain,
			StartTLS: d.StartTLS, CAFile: d.CAFile, InsecureSkipVerify: d.InsecureSkipVerify,
			Search: d.Search(), BindDN: d.BindDN, BindPassword: bindPassword, SearchBase: d.SearchBase, Filter: d.Filter,
			Timeout: cfg.Plugin.Timeout}, g.log)
		if err != nil {
			return nil, "", fmt.Errorf("local sasl: %w", err)
		}
		return v, "LDAP " + strings.Join(d.URLs, ","), nil
	default:
		return store, "the users file", nil
	}
}

// tokenVerifier checks OAUTHBEARER tokens against the configured key set.
func tokenVerifier(cfg config.LocalJWT, log *slog.Logger) (*jwt.Verifier, error) {
	var keys jwt.Keys
	var err error
	if cfg.JWKSFile != "" {
		keys, err = jwt.OpenFile(cfg.JWKSFile, 0, log)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		keys, err = jwt.OpenURL(ctx, cfg.JWKSURL, cfg.JWKSCAFile, cfg.JWKSRefresh, log)
	}
	if err != nil {
		return nil, fmt.Errorf("local sasl oauthbearer: %w", err)
	}
	return jwt.New(jwt.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, PrincipalClaim: cfg.PrincipalClaim, ClockSkew: cfg.ClockSkew}, keys, log), nil
}

// Authenticate runs the SASL exchange with a new client on c.Conn. On
// success c.SASL holds the session and c.Principal is User:<name>; an
// error means the connection must be closed (what the client was owed has
// been written). versions answers ApiVersions.
func (g *Gate) Authenticate(ctx context.Context, c *pipeline.Client, log *slog.Logger, versions Versions) error {
	if log == nil {
		log = g.log
	}
	srv, err := auth.NewServer(g.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_ = c.Conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.Conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			_ = c.Conn.SetDeadline(time.Time{})
		}
	}()
	a := &attempt{g: g, c: c, srv: srv, log: log, listener: c.Listener.String()}
	for first := true; !srv.Authenticated(); first = false {
		if srv.ExpectRaw() {
			if err := a.rawToken(ctx); err != nil {
				return err
			}
			continue
		}
		frame, err := readFrame(c.Conn, first)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("not authenticated within %v: %w", Timeout, err)
			}
			if reason := srv.Rejected(); reason != nil {
				// The client left at the error challenge: the failure is
				// its credentials', and is counted and logged as one.
				return a.failed(fmt.Errorf("%w (the client closed at the error challenge)", reason))
			}
			return err
		}
		if err := a.request(ctx, frame, versions); err != nil {
			return err
		}
	}
	c.SASL = srv
	c.Principal = "User:" + srv.Identity().Principal
	return nil
}

// attempt is one connection's authentication in progress.
type attempt struct {
	g        *Gate
	c        *pipeline.Client
	srv      *auth.Server
	log      *slog.Logger
	listener string
	mech     string // label of the mechanism the last handshake chose
}

// request answers one request before authentication.
func (a *attempt) request(ctx context.Context, frame []byte, versions Versions) error {
	h := wire.ParseRequestHeader(frame[4:])
	if err := a.srv.Permit(h.Key); err != nil {
		// Kafka closes without an answer; nothing was forwarded.
		if reason := a.srv.Rejected(); reason != nil {
			// A client that took the error challenge for success
			// (kafkajs does) failed on its credentials.
			err = fmt.Errorf("%w (then %v instead of ending the error challenge)", reason, err)
		}
		return a.failed(err)
	}
	switch kmsg.Key(h.Key) {
	case kmsg.ApiVersions:
		resp, err := a.apiVersions(ctx, frame, h.Version, versions)
		if err != nil {
			return err
		}
		return a.write(pipeline.AppendResponse(nil, resp, h.CorrelationID))
	case kmsg.SASLHandshake:
		req, err := pipeline.DecodeRequest(frame[4:])
		if err != nil {
			return err
		}
		hs := req.(*kmsg.SASLHandshakeRequest)
		a.mech = MechanismUnknown
		if slices.Contains(a.srv.Mechanisms(), hs.Mechanism) {
			a.mech = hs.Mechanism
		}
		resp, out, reason := a.srv.HandleHandshake(hs)
		return a.answer(resp, h.CorrelationID, out, reason)
	case kmsg.SASLAuthenticate:
		req, err := pipeline.DecodeRequest(frame[4:])
		if err != nil {
			return err
		}
		resp, out, reason := a.srv.HandleAuthenticate(ctx, req.(*kmsg.SASLAuthenticateRequest))
		return a.answer(resp, h.CorrelationID, out, reason)
	}
	return fmt.Errorf("%s before authentication", kmsg.NameForKey(h.Key)) // Permit lets nothing else through
}

// answer sends a SASL response and acts on the outcome.
func (a *attempt) answer(resp kmsg.Response, corr int32, out auth.Outcome, reason error) error {
	if out == auth.Authenticated {
		if err := a.admitted(); err != nil {
			if r, ok := resp.(*kmsg.SASLAuthenticateResponse); ok {
				msg := err.Error()
				*r = kmsg.SASLAuthenticateResponse{Version: r.Version, ErrorCode: kerr.SaslAuthenticationFailed.Code, ErrorMessage: &msg}
			}
			_ = a.write(pipeline.AppendResponse(nil, resp, corr))
			return a.failed(err)
		}
	}
	if err := a.write(pipeline.AppendResponse(nil, resp, corr)); err != nil {
		return err
	}
	switch out {
	case auth.Authenticated:
		a.succeeded()
	case auth.Close:
		return a.failed(reason)
	}
	return nil
}

func (a *attempt) succeeded() {
	a.g.hooks.ClientAuth(a.listener, a.label(), ResultSuccess)
	a.log.Debug("client authenticated", "mechanism", a.srv.Mechanism(), "principal", "User:"+a.srv.Identity().Principal)
}

// failed counts a failed authentication; the returned error closes the
// connection, and the caller logs it (one line per failure: the client's
// address, the mechanism and the user name the reason names; never a
// password or token).
func (a *attempt) failed(reason error) error {
	if reason == nil {
		reason = errors.New("sasl exchange refused")
	}
	a.g.hooks.ClientAuth(a.listener, a.label(), ResultFailure)
	return fmt.Errorf("%w: sasl %s: %w", ErrFailed, a.label(), reason)
}

func (a *attempt) label() string {
	if a.mech == "" {
		return MechanismUnknown
	}
	return a.mech
}

// rawToken answers one SASL token of the v0 flow: a 4-byte length and
// the token, answered the same way; a failure closes without a reply, as
// Kafka does.
func (a *attempt) rawToken(ctx context.Context) error {
	var size [4]byte
	if _, err := io.ReadFull(a.c.Conn, size[:]); err != nil {
		return fmt.Errorf("read sasl token: %w", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > uint32(a.srv.MaxMessageSize()) {
		return a.failed(fmt.Errorf("%w: raw token of %d bytes, limit %d", auth.ErrMessageTooLarge, n, a.srv.MaxMessageSize()))
	}
	token := make([]byte, n)
	if _, err := io.ReadFull(a.c.Conn, token); err != nil {
		return fmt.Errorf("read sasl token: %w", err)
	}
	reply, err := a.srv.StepRaw(ctx, token)
	if err == nil && a.srv.Authenticated() {
		err = a.admitted()
	}
	if err != nil {
		return a.failed(err)
	}
	if err := a.write(append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(reply)), uint32(len(reply))), reply...)); err != nil {
		return err
	}
	if a.srv.Authenticated() {
		a.succeeded()
	}
	return nil
}

// apiVersions answers ApiVersions before authentication with the broker's
// versions as the stages relay them (the client-sasl stage puts in the
// proxy's own SASL versions, since the proxy answers those). A version the proxy cannot read gets Kafka's answer:
// UNSUPPORTED_VERSION in v0 with the ApiVersions range, so the client
// retries lower.
func (a *attempt) apiVersions(ctx context.Context, frame []byte, version int16, versions Versions) (*kmsg.ApiVersionsResponse, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	if version > resp.MaxVersion() || version < 0 {
		resp.SetVersion(0)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: kmsg.ApiVersions.Int16(), MaxVersion: resp.MaxVersion()}}
		return resp, nil
	}
	req, err := pipeline.DecodeRequest(frame[4:])
	if err != nil {
		return nil, err
	}
	client := req.(*kmsg.ApiVersionsRequest)
	ask := kmsg.NewPtrApiVersionsRequest()
	ask.SetVersion(version)
	ask.ClientSoftwareName, ask.ClientSoftwareVersion = client.ClientSoftwareName, client.ClientSoftwareVersion
	ask.ClusterID, ask.NodeID = client.ClusterID, client.NodeID // v5+: the broker checks the client reached the right one
	resp, err = versions(ctx, ask)
	if err != nil {
		return nil, fmt.Errorf("ApiVersions from the broker: %w", err)
	}
	return resp, nil
}

// advertiseSASL puts the proxy's SASL versions into an ApiVersions answer.
func advertiseSASL(resp *kmsg.ApiVersionsResponse) {
	own := map[int16]int16{
		kmsg.SASLHandshake.Int16():    kmsg.NewPtrSASLHandshakeRequest().MaxVersion(),
		kmsg.SASLAuthenticate.Int16(): kmsg.NewPtrSASLAuthenticateRequest().MaxVersion(),
	}
	for i := range resp.ApiKeys {
		k := &resp.ApiKeys[i]
		if max, ok := own[k.ApiKey]; ok {
			k.MinVersion, k.MaxVersion = 0, max
			delete(own, k.ApiKey)
		}
	}
	for _, key := range []int16{kmsg.SASLHandshake.Int16(), kmsg.SASLAuthenticate.Int16()} {
		if max, ok := own[key]; ok {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: key, MaxVersion: max})
		}
	}
}

func (a *attempt) write(b []byte) error {
	if _, err := a.c.Conn.Write(b); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

// readFrame reads one request frame, size prefix included, reading no
// byte past it (what follows belongs to the session).
func readFrame(conn net.Conn, first bool) ([]byte, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(conn, prefix[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("client closed the connection before authenticating")
		}
		return nil, fmt.Errorf("read request: %w", err)
	}
	if first {
		if p := wire.ForeignProtocol(prefix[:]); p != "" {
			return nil, fmt.Errorf("client speaks %s", p)
		}
	}
	n, err := wire.CheckSize(prefix[:], wire.RequestHeaderMin, MaxFrame)
	if err != nil {
		return nil, fmt.Errorf("request before authentication: %w", err)
	}
	frame := make([]byte, 4+n)
	copy(frame, prefix[:])
	if _, err := io.ReadFull(conn, frame[4:]); err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	return frame, nil
}
