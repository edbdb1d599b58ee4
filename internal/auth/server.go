package auth

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultMaxMessageSize caps one SASL message when Config.MaxMessageSize is
// zero. Kafka's sasl.server.max.receive.size (512 KiB) bounds the whole
// frame; 64 KiB is ample for any token a client sends (large JWTs are a few
// KiB) and keeps an unauthenticated peer from making the proxy parse more.
const DefaultMaxMessageSize = 64 << 10

// minReauthInterval is Kafka's limit on re-authentication: a second start
// within a second of the previous one is refused
// (KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS).
const minReauthInterval = time.Second

// Config is everything a Server needs; one Config serves every connection
// of a listener.
type Config struct {
	// Mechanisms are the enabled mechanisms, listed in this order in
	// SaslHandshake responses.
	Mechanisms []Mechanism
	// SessionLifetime is Kafka's connections.max.reauth.ms: zero means
	// sessions do not expire (unless the credential does) and clients are
	// not asked to re-authenticate.
	SessionLifetime time.Duration
	// MaxMessageSize caps one SASL message (SaslAuthenticate bytes or a v0
	// raw token); zero means DefaultMaxMessageSize.
	MaxMessageSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if len(c.Mechanisms) == 0 {
		errs = append(errs, errors.New("no sasl mechanisms enabled"))
	}
	seen := map[string]bool{}
	for i, m := range c.Mechanisms {
		switch {
		case m == nil:
			errs = append(errs, fmt.Errorf("mechanisms[%d]: nil", i))
		case m.Name() == "":
			errs = append(errs, fmt.Errorf("mechanisms[%d]: empty name", i))
		case seen[m.Name()]:
			errs = append(errs, fmt.Errorf("mechanisms[%d]: %s listed twice", i, m.Name()))
		default:
			seen[m.Name()] = true
		}
	}
	if c.SessionLifetime < 0 {
		errs = append(errs, fmt.Errorf("session lifetime %v is negative", c.SessionLifetime))
	}
	if c.MaxMessageSize < 0 {
		errs = append(errs, fmt.Errorf("max message size %d is negative", c.MaxMessageSize))
	}
	return errors.Join(errs...)
}

// Outcome tells the caller what to do after a SASL request.
type Outcome int

const (
	// Continue: send the response and keep reading requests.
	Continue Outcome = iota
	// Authenticated: send the response; the connection is now
	// authenticated as Identity().
	Authenticated
	// Reauthenticated: send the response; a KIP-368 re-authentication
	// succeeded and the session was renewed.
	Reauthenticated
	// Close: send the response, then close the connection.
	Close
)

func (o Outcome) String() string {
	switch o {
	case Continue:
		return "continue"
	case Authenticated:
		return "authenticated"
	case Reauthenticated:
		return "reauthenticated"
	case Close:
		return "close"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// state is where a connection is in Kafka's SaslServerAuthenticator.
type state int

const (
	stateInitial       state = iota // before SaslHandshake
	stateAuthenticate               // handshake v1 done: SaslAuthenticate expected
	stateRaw                        // handshake v0 done: raw tokens expected
	stateReauthBadMech              // re-auth handshake with another mechanism: next SaslAuthenticate fails
	stateAuthenticated              // session established
	stateFailed                     // terminal
)

// Server is one connection's SASL state machine. Build one per connection
// with NewServer. Its methods may be called from several goroutines (for
// instance an expiry timer calling Expired); a step holds the lock while a
// credential back end is consulted.
type Server struct {
	mechs    map[string]Mechanism
	names    []string
	lifetime time.Duration
	maxMsg   int
	now      func() time.Time

	mu          sync.Mutex
	state       state
	mech        string   // mechanism of the exchange in progress
	ex          Exchange // exchange in progress
	reauth      bool     // the exchange in progress is a re-authentication
	badMechMsg  string   // stateReauthBadMech's failure message
	authed      bool     // a session was established (also during re-auth)
	identity    Identity
	sessionMech string
	expiry      time.Time // session expiry; zero: none
	// clientReauth records that the client used SaslAuthenticate v1+, so it
	// knows about session lifetimes (Kafka's
	// connectedClientSupportsReauthentication).
	clientReauth    bool
	lastReauthStart time.Time
}

// NewServer returns the SASL state machine for a new connection.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sasl server: %w", err)
	}
	s := &Server{
		mechs:    make(map[string]Mechanism, len(cfg.Mechanisms)),
		lifetime: cfg.SessionLifetime,
		maxMsg:   cfg.MaxMessageSize,
		now:      cfg.Now,
	}
	for _, m := range cfg.Mechanisms {
		s.mechs[m.Name()] = m
		s.names = append(s.names, m.Name())
	}
	if s.maxMsg == 0 {
		s.maxMsg = DefaultMaxMessageSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Mechanisms lists the enabled mechanism names, as handshakes do.
func (s *Server) Mechanisms() []string { return slices.Clone(s.names) }

// MaxMessageSize is the cap on one SASL message. Callers reading v0 raw
// tokens should refuse a length prefix above it before reading the bytes.
func (s *Server) MaxMessageSize() int { return s.maxMsg }

// ExpectRaw reports that a SaslHandshake v0 was accepted and the next
// frame from the client is a raw SASL token (4-byte length and bytes, no
// Kafka request header) to pass to StepRaw.
func (s *Server) ExpectRaw() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateRaw
}

// Authenticated reports that a session has been established. It stays
// true during a re-authentication, whose outcome decides whether the
// connection survives.
func (s *Server) Authenticated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authed
}

// Rejected is why the exchange in progress turned the client's
// credentials down while leaving the final word to the client (an
// OAUTHBEARER error challenge awaiting its %x01); nil otherwise. A client
// that gives up at the challenge never hears the failure, so the caller
// logs this instead.
func (s *Server) Rejected() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.ex.(interface{ rejected() error }); ok {
		return r.rejected()
	}
	return nil
}

// Identity is the session's identity (zero before authentication).
func (s *Server) Identity() Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity
}

// Mechanism is the mechanism the session authenticated with ("" before).
func (s *Server) Mechanism() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionMech
}

// SessionExpiry is when the session expires (zero: never), for callers
// that arm a timer.
func (s *Server) SessionExpiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiry
}

// Expired reports that the session is past its expiry. Kafka then closes
// the connection at the next request other than a re-authentication
// handshake; Permit applies that rule.
func (s *Server) Expired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiredLocked(now)
}

func (s *Server) expiredLocked(now time.Time) bool {
	return s.authed && !s.expiry.IsZero() && now.After(s.expiry)
}

// reword gives a mechanism's error Kafka's client-facing form: errors that
// are not *AuthError get the generic message (their text may say too
// much), and the generic message says "re-authentication" during one.
func (s *Server) reword(err error) *AuthError {
	generic := invalidCredentials(s.mech, false, nil).Message
	var ae *AuthError
	if !errors.As(err, &ae) {
		return invalidCredentials(s.mech, s.reauth, err)
	}
	out := *ae
	if out.Code == 0 {
		out.Code = invalidCredentials(s.mech, false, nil).Code
	}
	if s.reauth && out.Message == generic {
		out.Message = invalidCredentials(s.mech, true, nil).Message
	}
	return &out
}
