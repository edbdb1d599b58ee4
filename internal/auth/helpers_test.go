package auth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
)

// passwords is a PasswordVerifier over a map; "broken" simulates a back end
// that cannot answer.
type passwords map[string]string

func (p passwords) VerifyPassword(_ context.Context, user, password string) error {
	if user == "broken" {
		return errors.New("directory unreachable")
	}
	want, ok := p[user]
	switch {
	case !ok:
		return ErrUnknownUser
	case want != password:
		return ErrInvalidCredentials
	}
	return nil
}

// scramStore is a ScramCredentialStore over a map, filled from passwords.
type scramStore struct {
	creds map[string]map[string]ScramCredentials // mechanism -> user
	err   error                                  // returned for every lookup when set
}

func newScramStore(t testing.TB, users map[string]string) *scramStore {
	t.Helper()
	s := &scramStore{creds: map[string]map[string]ScramCredentials{}}
	for _, mech := range []string{MechanismScramSHA256, MechanismScramSHA512} {
		s.creds[mech] = map[string]ScramCredentials{}
		for u, p := range users {
			c, err := NewScramCredentials(mech, p, DefaultScramIterations)
			if err != nil {
				t.Fatal(err)
			}
			s.creds[mech][u] = c
		}
	}
	return s
}

func (s *scramStore) LookupScram(_ context.Context, mechanism, user string) (ScramCredentials, error) {
	if s.err != nil {
		return ScramCredentials{}, s.err
	}
	c, ok := s.creds[mechanism][user]
	if !ok {
		return ScramCredentials{}, ErrUnknownUser
	}
	return c, nil
}

// tokens is a TokenVerifier over a map of token -> identity; it records
// how often it was called, to prove that oversized messages are refused
// before parsing.
type tokens struct {
	mu    sync.Mutex
	ids   map[string]Identity
	calls int
}

func (v *tokens) VerifyToken(_ context.Context, token string) (string, time.Time, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	if token == "scoped" {
		return "", time.Time{}, &TokenError{Scope: "kafka", Err: errors.New("missing scope")}
	}
	id, ok := v.ids[token]
	if !ok {
		return "", time.Time{}, errors.New("unknown token")
	}
	return id.Principal, id.Expiry, nil
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture builds every mechanism over the same users.
type fixture struct {
	users  passwords
	store  *scramStore
	tokens *tokens
	clock  *clock
	mechs  []Mechanism
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		users: passwords{"alice": "alice-secret", "bob": "bob-secret"},
		clock: newClock(),
	}
	f.store = newScramStore(t, f.users)
	f.tokens = &tokens{ids: map[string]Identity{
		"alice-token": {Principal: "alice", Expiry: f.clock.Now().Add(time.Hour)},
		"alice-short": {Principal: "alice", Expiry: f.clock.Now().Add(90 * time.Second)},
		"bob-token":   {Principal: "bob", Expiry: f.clock.Now().Add(time.Hour)},
		"forever":     {Principal: "carol"},
	}}
	s256, err := NewScram(MechanismScramSHA256, f.store)
	if err != nil {
		t.Fatal(err)
	}
	s512, err := NewScram(MechanismScramSHA512, f.store)
	if err != nil {
		t.Fatal(err)
	}
	f.mechs = []Mechanism{NewPlain(f.users), s256, s512, NewOAuthBearer(f.tokens)}
	return f
}

func (f *fixture) server(t testing.TB, lifetime time.Duration) *Server {
	t.Helper()
	s, err := NewServer(Config{Mechanisms: f.mechs, SessionLifetime: lifetime, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) mechanism(name string) Mechanism {
	for _, m := range f.mechs {
		if m.Name() == name {
			return m
		}
	}
	return nil
}

// result is how one client-driven authentication ended.
type result struct {
	outcome   Outcome
	code      int16
	message   string
	lifetime  int64
	err       error // the server's log reason
	clientErr error // the client refused the server's messages
}

func handshake(t testing.TB, s *Server, mech string, version int16) (*kmsg.SASLHandshakeResponse, Outcome, error) {
	t.Helper()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.SetVersion(version)
	req.Mechanism = mech
	resp, out, err := s.HandleHandshake(req)
	roundTripHandshake(t, resp)
	return resp, out, err
}

func authenticate(t testing.TB, s *Server, version int16, msg []byte) (*kmsg.SASLAuthenticateResponse, Outcome, error) {
	t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(version)
	req.SASLAuthBytes = msg
	resp, out, err := s.HandleAuthenticate(context.Background(), req)
	if resp == nil {
		t.Fatal("nil SaslAuthenticate response")
	}
	roundTripAuthenticate(t, resp)
	return resp, out, err
}

// clientAuth runs a franz-go client mechanism against s the way kgo does:
// SaslHandshake v1, then SaslAuthenticate at authVersion until the client
// session is done or the server fails.
func clientAuth(t testing.TB, s *Server, m sasl.Mechanism, authVersion int16) result {
	t.Helper()
	resp, out, err := handshake(t, s, m.Name(), 1)
	if resp.ErrorCode != 0 {
		return result{outcome: out, code: resp.ErrorCode, err: err}
	}
	sess, msg, err := m.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatalf("client %s: %v", m.Name(), err)
	}
	for range 5 {
		resp, out, err := authenticate(t, s, authVersion, msg)
		r := result{outcome: out, code: resp.ErrorCode, lifetime: resp.SessionLifetimeMillis, err: err}
		if resp.ErrorMessage != nil {
			r.message = *resp.ErrorMessage
		}
		if resp.ErrorCode != 0 || out == Close {
			return r
		}
		done, next, cerr := sess.Challenge(resp.SASLAuthBytes)
		if cerr != nil {
			r.clientErr = cerr
			return r
		}
		if done {
			if out != Authenticated && out != Reauthenticated {
				t.Fatalf("client done but server outcome %v", out)
			}
			return r
		}
		msg = next
	}
	t.Fatal("exchange did not finish")
	return result{}
}

// rawAuth runs a franz-go client mechanism over the v0 flow: SaslHandshake
// v0, then raw tokens through StepRaw.
func rawAuth(t testing.TB, s *Server, m sasl.Mechanism) error {
	t.Helper()
	resp, _, err := handshake(t, s, m.Name(), 0)
	if resp.ErrorCode != 0 {
		return err
	}
	if !s.ExpectRaw() {
		t.Fatal("v0 handshake accepted but ExpectRaw is false")
	}
	sess, msg, err := m.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		reply, err := s.StepRaw(context.Background(), msg)
		if err != nil {
			return err
		}
		if reply == nil {
			t.Fatal("StepRaw returned a nil reply: the caller could not frame an empty token")
		}
		done, next, err := sess.Challenge(reply)
		if err != nil {
			t.Fatalf("client rejected raw reply: %v", err)
		}
		if done {
			if s.ExpectRaw() || !s.Authenticated() {
				t.Fatal("raw exchange done but server not authenticated")
			}
			return nil
		}
		msg = next
	}
	t.Fatal("raw exchange did not finish")
	return nil
}

// roundTripAuthenticate encodes a response at its version and decodes it
// at the same version, checking every field that version carries.
func roundTripAuthenticate(t testing.TB, resp *kmsg.SASLAuthenticateResponse) {
	t.Helper()
	if resp.Version < 0 || resp.Version > resp.MaxVersion() {
		return
	}
	buf := resp.AppendTo(nil)
	got := kmsg.NewPtrSASLAuthenticateResponse()
	got.SetVersion(resp.Version)
	if err := got.ReadFrom(buf); err != nil {
		t.Fatalf("SaslAuthenticate v%d response does not decode: %v", resp.Version, err)
	}
	wantLifetime := resp.SessionLifetimeMillis
	if resp.Version < 1 {
		wantLifetime = 0
	}
	if got.ErrorCode != resp.ErrorCode || !equalPtr(got.ErrorMessage, resp.ErrorMessage) ||
		!bytes.Equal(got.SASLAuthBytes, resp.SASLAuthBytes) || got.SessionLifetimeMillis != wantLifetime {
		t.Fatalf("SaslAuthenticate v%d round trip: got %+v, want %+v", resp.Version, got, resp)
	}
}

func roundTripHandshake(t testing.TB, resp *kmsg.SASLHandshakeResponse) {
	t.Helper()
	buf := resp.AppendTo(nil)
	got := kmsg.NewPtrSASLHandshakeResponse()
	got.SetVersion(resp.Version)
	if err := got.ReadFrom(buf); err != nil {
		t.Fatalf("SaslHandshake v%d response does not decode: %v", resp.Version, err)
	}
	if got.ErrorCode != resp.ErrorCode || strings.Join(got.SupportedMechanisms, ",") != strings.Join(resp.SupportedMechanisms, ",") {
		t.Fatalf("SaslHandshake v%d round trip: got %+v, want %+v", resp.Version, got, resp)
	}
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// genericMsg is Kafka's generic failure message.
func genericMsg(mech string) string {
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
}
