package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

var allMechs = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512, MechanismOAuthBearer}

func TestHandshake(t *testing.T) {
	f := newFixture(t)
	for _, v := range []int16{0, 1} {
		s := f.server(t, 0)
		resp, out, err := handshake(t, s, "GSSAPI", v)
		if resp.ErrorCode != 33 || out != Close || !errors.Is(err, ErrUnsupportedMechanism) || !slices.Equal(resp.SupportedMechanisms, allMechs) {
			t.Fatalf("v%d unknown mechanism: %+v %v %v", v, resp, out, err)
		}

		s = f.server(t, 0)
		resp, out, err = handshake(t, s, MechanismPlain, v)
		if resp.ErrorCode != 0 || out != Continue || err != nil || !slices.Equal(resp.SupportedMechanisms, allMechs) {
			t.Fatalf("v%d: %+v %v %v", v, resp, out, err)
		}
		if s.ExpectRaw() != (v == 0) {
			t.Fatalf("v%d: ExpectRaw %v", v, s.ExpectRaw())
		}
		// A second handshake before the exchange finished.
		resp, out, err = handshake(t, s, MechanismPlain, 1)
		if resp.ErrorCode != 34 || out != Close || !errors.Is(err, ErrIllegalState) || !slices.Equal(resp.SupportedMechanisms, allMechs) {
			t.Fatalf("v%d second handshake: %+v %v %v", v, resp, out, err)
		}
	}
	s := f.server(t, 0)
	if resp, out, _ := handshake(t, s, MechanismPlain, 2); resp.ErrorCode != 35 || out != Close {
		t.Fatalf("v2 handshake: %+v %v", resp, out)
	}
}

func TestAuthenticateOutOfOrder(t *testing.T) {
	f := newFixture(t)
	s := f.server(t, 0)
	resp, out, err := authenticate(t, s, 1, []byte("\x00alice\x00alice-secret"))
	if resp.ErrorCode != 34 || out != Close || !errors.Is(err, ErrIllegalState) {
		t.Fatalf("before handshake: %+v %v %v", resp, out, err)
	}
	// SaslAuthenticate after a v0 handshake: tokens must come raw.
	s = f.server(t, 0)
	handshake(t, s, MechanismPlain, 0)
	if resp, out, _ := authenticate(t, s, 1, []byte("\x00alice\x00alice-secret")); resp.ErrorCode != 34 || out != Close {
		t.Fatalf("after v0 handshake: %+v %v", resp, out)
	}
	// After success, the broker's request handler answers and the
	// connection stays.
	s = f.server(t, 0)
	clientAuth(t, s, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), 1)
	resp, out, _ = authenticate(t, s, 1, []byte("x"))
	if resp.ErrorCode != 34 || out != Continue || *resp.ErrorMessage != "SaslAuthenticate request received after successful authentication" || !s.Authenticated() {
		t.Fatalf("after success: %+v %v", resp, out)
	}
	// Unsupported SaslAuthenticate version.
	s = f.server(t, 0)
	handshake(t, s, MechanismPlain, 1)
	if resp, out, _ := authenticate(t, s, 3, nil); resp.ErrorCode != 35 || out != Close {
		t.Fatalf("v3: %+v %v", resp, out)
	}
	// After a failure nothing more.
	s = f.server(t, 0)
	clientAuth(t, s, plain.Auth{User: "alice", Pass: "bad"}.AsMechanism(), 1)
	if _, out, _ := handshake(t, s, MechanismPlain, 1); out != Close {
		t.Fatal("handshake accepted after failure")
	}
	if err := s.Permit(kmsg.ApiVersions.Int16()); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("Permit after failure: %v", err)
	}
}

func TestRawFlow(t *testing.T) {
	f := newFixture(t)
	ok := []struct {
		name, principal string
		run             func(*Server) error
	}{
		{"PLAIN", "alice", func(s *Server) error {
			return rawAuth(t, s, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())
		}},
		{"SCRAM-SHA-256", "bob", func(s *Server) error {
			return rawAuth(t, s, kscram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism())
		}},
		{"SCRAM-SHA-512", "bob", func(s *Server) error {
			return rawAuth(t, s, kscram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism())
		}},
		{"OAUTHBEARER", "alice", func(s *Server) error {
			return rawAuth(t, s, oauth.Auth{Token: "alice-short"}.AsMechanism())
		}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			s := f.server(t, time.Hour)
			if err := tc.run(s); err != nil {
				t.Fatal(err)
			}
			if s.Identity().Principal != tc.principal || s.Mechanism() != tc.name || s.SessionExpiry().IsZero() {
				t.Fatalf("identity %+v mechanism %s expiry %v", s.Identity(), s.Mechanism(), s.SessionExpiry())
			}
			if err := s.Permit(kmsg.Metadata.Int16()); err != nil {
				t.Fatal(err)
			}
			// A v0 client never learns the lifetime, so it cannot
			// re-authenticate; its session still expires.
			f.clock.Advance(2 * time.Hour)
			if _, out, err := handshake(t, s, tc.name, 1); out != Close || !errors.Is(err, ErrSessionExpired) {
				t.Fatalf("re-auth of a v0 session: %v %v", out, err)
			}
		})
	}
	t.Run("failure", func(t *testing.T) {
		s := f.server(t, 0)
		err := rawAuth(t, s, plain.Auth{User: "alice", Pass: "bad"}.AsMechanism())
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Message != plainBadCredentials || s.Authenticated() {
			t.Fatalf("got %v", err)
		}
		if _, err := s.StepRaw(context.Background(), []byte("x")); !errors.Is(err, ErrIllegalState) {
			t.Fatalf("StepRaw after failure: %v", err)
		}
	})
	t.Run("oauthbearer challenge", func(t *testing.T) {
		s := f.server(t, 0)
		handshake(t, s, MechanismOAuthBearer, 0)
		reply, err := s.StepRaw(context.Background(), []byte("n,,\x01auth=Bearer nope\x01\x01"))
		if err != nil || string(reply) != `{"status":"invalid_token"}` {
			t.Fatalf("got %q %v", reply, err)
		}
		if _, err := s.StepRaw(context.Background(), []byte{1}); err == nil || s.Authenticated() {
			t.Fatalf("after %%x01: %v", err)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		s := f.server(t, 0)
		handshake(t, s, MechanismPlain, 0)
		if _, err := s.StepRaw(context.Background(), make([]byte, DefaultMaxMessageSize+1)); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestAuthenticateVersions checks every SaslAuthenticate version's
// responses, which the helpers round-trip through kmsg at that version.
func TestAuthenticateVersions(t *testing.T) {
	f := newFixture(t)
	for v := int16(0); v <= 2; v++ {
		s := f.server(t, 10*time.Minute)
		r := clientAuth(t, s, kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), v)
		if r.outcome != Authenticated || r.lifetime != (10*time.Minute).Milliseconds() {
			t.Fatalf("v%d: %+v", v, r)
		}
		if want := f.clock.Now().Add(10 * time.Minute); !s.SessionExpiry().Equal(want) {
			t.Fatalf("v%d: expiry %v, want %v", v, s.SessionExpiry(), want)
		}
	}
}

func TestSessionLifetime(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		token    string
		want     time.Duration
	}{
		{"configured only", time.Hour, "forever", time.Hour},
		{"token caps configured", time.Hour, "alice-short", 90 * time.Second},
		{"configured caps token", time.Minute, "alice-short", time.Minute},
		{"token only", 0, "alice-short", 90 * time.Second},
		{"neither", 0, "forever", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.clock.Advance(250 * time.Microsecond) // lifetimes are whole milliseconds
			s := f.server(t, tc.lifetime)
			r := clientAuth(t, s, oauth.Auth{Token: tc.token}.AsMechanism(), 1)
			if r.outcome != Authenticated || time.Duration(r.lifetime)*time.Millisecond != tc.want {
				t.Fatalf("got %+v, want %v", r, tc.want)
			}
			if tc.want == 0 {
				if !s.SessionExpiry().IsZero() || s.Expired(f.clock.Now().Add(1000*time.Hour)) {
					t.Fatal("session without lifetime expires")
				}
				return
			}
			if s.Expired(f.clock.Now().Add(tc.want)) {
				t.Fatal("expired at the expiry instant (Kafka: only after it)")
			}
			if !s.Expired(f.clock.Now().Add(tc.want + time.Nanosecond)) {
				t.Fatal("not expired after expiry")
			}
			if id := s.Identity(); tc.token == "alice-short" && id.Expiry.IsZero() {
				t.Fatal("token expiry lost")
			}
		})
	}
}

func TestPermit(t *testing.T) {
	f := newFixture(t)
	s := f.server(t, time.Minute)
	for _, k := range []kmsg.Key{kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate} {
		if !AllowedBeforeAuth(k.Int16()) || s.Permit(k.Int16()) != nil {
			t.Fatalf("%v refused before auth", k)
		}
	}
	if AllowedBeforeAuth(kmsg.Metadata.Int16()) || !errors.Is(s.Permit(kmsg.Metadata.Int16()), ErrNotAuthenticated) {
		t.Fatal("Metadata allowed before auth")
	}
	handshake(t, s, MechanismScramSHA256, 1)
	if err := s.Permit(kmsg.ApiVersions.Int16()); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("ApiVersions during an exchange: %v", err)
	}
	s = f.server(t, time.Minute)
	clientAuth(t, s, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), 1)
	if err := s.Permit(kmsg.Produce.Int16()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute + time.Millisecond)
	if err := s.Permit(kmsg.Produce.Int16()); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("after expiry: %v", err)
	}
	if err := s.Permit(kmsg.ApiVersions.Int16()); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("ApiVersions after expiry: %v", err)
	}
	// Re-authenticating after expiry renews the session.
	if r := clientAuth(t, s, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), 1); r.outcome != Reauthenticated {
		t.Fatalf("re-auth after expiry: %+v", r)
	}
	if err := s.Permit(kmsg.Produce.Int16()); err != nil {
		t.Fatal(err)
	}
}

func TestReauthentication(t *testing.T) {
	alice := plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()
	t.Run("success for every mechanism", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		for i := range 3 {
			r := clientAuth(t, s, alice, 2)
			want := Authenticated
			if i > 0 {
				want = Reauthenticated
			}
			if r.outcome != want || r.lifetime != time.Minute.Milliseconds() {
				t.Fatalf("round %d: %+v", i, r)
			}
			f.clock.Advance(30 * time.Second)
		}
		for _, mech := range []string{MechanismScramSHA256, MechanismScramSHA512, MechanismOAuthBearer} {
			s := f.server(t, time.Minute)
			var m = map[string]func() result{
				MechanismScramSHA256: func() result {
					return clientAuth(t, s, kscram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism(), 1)
				},
				MechanismScramSHA512: func() result {
					return clientAuth(t, s, kscram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism(), 1)
				},
				MechanismOAuthBearer: func() result { return clientAuth(t, s, oauth.Auth{Token: "bob-token"}.AsMechanism(), 1) },
			}[mech]
			if r := m(); r.outcome != Authenticated {
				t.Fatalf("%s: %+v", mech, r)
			}
			f.clock.Advance(2 * time.Second)
			if r := m(); r.outcome != Reauthenticated || s.Identity().Principal != "bob" {
				t.Fatalf("%s re-auth: %+v", mech, r)
			}
		}
	})
	t.Run("changed principal", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		clientAuth(t, s, oauth.Auth{Token: "alice-token"}.AsMechanism(), 1)
		f.clock.Advance(2 * time.Second)
		r := clientAuth(t, s, oauth.Auth{Token: "bob-token"}.AsMechanism(), 1)
		if r.outcome != Close || r.code != 58 || r.message != "Cannot change principals during re-authentication from User.alice: User.bob" {
			t.Fatalf("got %+v", r)
		}
		if s.Identity().Principal != "alice" {
			t.Fatal("identity changed")
		}
		if err := s.Permit(kmsg.Produce.Int16()); err == nil {
			t.Fatal("requests allowed after a failed re-authentication")
		}
	})
	t.Run("first authentication with SaslAuthenticate v0", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		clientAuth(t, s, alice, 0)
		f.clock.Advance(2 * time.Second)
		resp, out, err := handshake(t, s, MechanismPlain, 1)
		if resp.ErrorCode != 34 || out != Continue || !errors.Is(err, ErrIllegalState) || !s.Authenticated() {
			t.Fatalf("got %+v %v %v", resp, out, err)
		}
	})
	t.Run("re-auth SaslAuthenticate v0", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		clientAuth(t, s, alice, 1)
		f.clock.Advance(2 * time.Second)
		r := clientAuth(t, s, alice, 0)
		if r.outcome != Close || r.code != 58 || !strings.Contains(r.message, "during re-authentication") {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("re-auth handshake v0", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		clientAuth(t, s, alice, 1)
		f.clock.Advance(2 * time.Second)
		if resp, out, _ := handshake(t, s, MechanismPlain, 0); resp.ErrorCode != 34 || out != Continue {
			t.Fatalf("got %+v %v", resp, out)
		}
	})
	t.Run("no lifetime", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, 0)
		clientAuth(t, s, alice, 1)
		if resp, out, _ := handshake(t, s, MechanismPlain, 1); resp.ErrorCode != 34 || out != Continue {
			t.Fatalf("got %+v %v", resp, out)
		}
	})
	t.Run("once a second", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		clientAuth(t, s, alice, 1)
		if r := clientAuth(t, s, alice, 1); r.outcome != Reauthenticated {
			t.Fatalf("first re-auth: %+v", r) // the first may come at once
		}
		f.clock.Advance(500 * time.Millisecond)
		if resp, out, _ := handshake(t, s, MechanismPlain, 1); resp.ErrorCode != 34 || out != Continue {
			t.Fatalf("second re-auth within a second: %+v %v", resp, out)
		}
		f.clock.Advance(500 * time.Millisecond)
		if r := clientAuth(t, s, alice, 1); r.outcome != Reauthenticated {
			t.Fatalf("after a second: %+v", r)
		}
	})
	t.Run("different mechanism", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		clientAuth(t, s, alice, 1)
		f.clock.Advance(2 * time.Second)
		r := clientAuth(t, s, kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(), 1)
		want := "SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for re-authentication of mechanism 'PLAIN'"
		if r.outcome != Close || r.code != 58 || r.message != want {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("bad credentials", func(t *testing.T) {
		f := newFixture(t)
		s := f.server(t, time.Minute)
		m := kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()
		clientAuth(t, s, m, 1)
		f.store.creds[MechanismScramSHA256]["alice"], _ = NewScramCredentials(MechanismScramSHA256, "rotated", 4096)
		f.clock.Advance(2 * time.Second)
		r := clientAuth(t, s, m, 1)
		want := "Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
		if r.outcome != Close || r.message != want {
			t.Fatalf("got %+v", r)
		}
	})
}

func TestOversizedMessage(t *testing.T) {
	f := newFixture(t)
	jwt := "n,,\x01auth=Bearer " + strings.Repeat("a", 1<<20) + "\x01\x01"
	for v := int16(0); v <= 2; v++ {
		s := f.server(t, 0)
		handshake(t, s, MechanismOAuthBearer, 1)
		resp, out, err := authenticate(t, s, v, []byte(jwt))
		if resp.ErrorCode != 58 || out != Close || !errors.Is(err, ErrMessageTooLarge) || *resp.ErrorMessage != tooLargeMessage {
			t.Fatalf("v%d: %+v %v %v", v, resp, out, err)
		}
	}
	if f.tokens.calls != 0 {
		t.Fatal("oversized token reached the verifier")
	}
	// A configured cap applies exactly.
	s, _ := NewServer(Config{Mechanisms: f.mechs, MaxMessageSize: 32})
	handshake(t, s, MechanismPlain, 1)
	if _, _, err := authenticate(t, s, 1, make([]byte, 33)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("cap 32: %v", err)
	}
	s, _ = NewServer(Config{Mechanisms: f.mechs, MaxMessageSize: 32})
	handshake(t, s, MechanismPlain, 1)
	if _, out, _ := authenticate(t, s, 1, []byte("\x00alice\x00alice-secret")); out != Authenticated {
		t.Fatal("message under the cap refused")
	}
}

// leakyMechanism returns errors that are not *AuthError; the Server must
// not pass their text to the client.
type leakyMechanism struct{}

func (leakyMechanism) Name() string    { return "LEAKY" }
func (leakyMechanism) Start() Exchange { return leakyExchange{} }

type leakyExchange struct{}

func (leakyExchange) Step(context.Context, []byte) ([]byte, bool, error) {
	return nil, false, errors.New("user root has password hunter2")
}
func (leakyExchange) Identity() Identity { return Identity{} }

func TestForeignErrorsAreGeneric(t *testing.T) {
	s, err := NewServer(Config{Mechanisms: []Mechanism{leakyMechanism{}}})
	if err != nil {
		t.Fatal(err)
	}
	handshake(t, s, "LEAKY", 1)
	resp, out, _ := authenticate(t, s, 1, []byte("x"))
	if out != Close || *resp.ErrorMessage != genericMsg("LEAKY") {
		t.Fatalf("got %v %q", out, *resp.ErrorMessage)
	}
}

func TestConfigValidate(t *testing.T) {
	f := newFixture(t)
	for _, cfg := range []Config{
		{},
		{Mechanisms: []Mechanism{nil}},
		{Mechanisms: []Mechanism{f.mechs[0], f.mechs[0]}},
		{Mechanisms: f.mechs, SessionLifetime: -1},
		{Mechanisms: f.mechs, MaxMessageSize: -1},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := NewScram("SCRAM-SHA-1", f.store); err == nil {
		t.Error("SCRAM-SHA-1 accepted")
	}
	if Outcome(9).String() != "Outcome(9)" || Close.String() != "close" {
		t.Error("Outcome.String")
	}
}
