package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"
)

var scramMechs = []string{MechanismScramSHA256, MechanismScramSHA512}

func franzScram(mech string, a kscram.Auth) sasl.Mechanism {
	if mech == MechanismScramSHA512 {
		return a.AsSha512Mechanism()
	}
	return a.AsSha256Mechanism()
}

func xdgHash(mech string) xscram.HashGeneratorFcn {
	if mech == MechanismScramSHA512 {
		return xscram.SHA512
	}
	return xscram.SHA256
}

func TestScramFranzClient(t *testing.T) {
	for _, mech := range scramMechs {
		for _, tc := range []struct {
			name    string
			auth    kscram.Auth
			wantMsg string // "" means success
		}{
			{name: "ok", auth: kscram.Auth{User: "alice", Pass: "alice-secret"}},
			{name: "authzid equal to user", auth: kscram.Auth{Zid: "alice", User: "alice", Pass: "alice-secret"}},
			{name: "wrong password", auth: kscram.Auth{User: "alice", Pass: "nope"}, wantMsg: genericMsg(mech)},
			{name: "unknown user", auth: kscram.Auth{User: "mallory", Pass: "nope"}, wantMsg: genericMsg(mech)},
			{name: "authzid differs", auth: kscram.Auth{Zid: "bob", User: "alice", Pass: "alice-secret"}, wantMsg: scramAuthzMismatch},
			{name: "delegation token", auth: kscram.Auth{User: "tokenid", Pass: "hmac", IsToken: true}, wantMsg: genericMsg(mech)},
		} {
			t.Run(mech+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t)
				for v := int16(0); v <= 2; v++ {
					s := f.server(t, 0)
					r := clientAuth(t, s, franzScram(mech, tc.auth), v)
					if r.clientErr != nil {
						t.Fatalf("v%d: client rejected the server: %v", v, r.clientErr)
					}
					if tc.wantMsg == "" {
						if r.outcome != Authenticated || s.Identity().Principal != tc.auth.User || s.Mechanism() != mech {
							t.Fatalf("v%d: %+v identity %+v", v, r, s.Identity())
						}
						continue
					}
					if r.outcome != Close || r.code != 58 || r.message != tc.wantMsg || r.err == nil {
						t.Fatalf("v%d: got %+v, want %q", v, r, tc.wantMsg)
					}
				}
			})
		}
	}
}

// xdgConverse runs an xdg-go/scram client conversation against one SCRAM
// exchange, letting tamper rewrite the client-final-message.
func xdgConverse(t *testing.T, ex Exchange, conv *xscram.ClientConversation, tamper func(string) string) (Identity, error) {
	t.Helper()
	ctx := context.Background()
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	s1, done, err := ex.Step(ctx, []byte(first))
	if err != nil || done {
		return Identity{}, err
	}
	final, err := conv.Step(string(s1))
	if err != nil {
		t.Fatalf("client rejected server-first %q: %v", s1, err)
	}
	if tamper != nil {
		final = tamper(final)
	}
	s2, done, err := ex.Step(ctx, []byte(final))
	if err != nil {
		return Identity{}, err
	}
	if !done {
		t.Fatal("SCRAM not done after the final message")
	}
	if _, err := conv.Step(string(s2)); err != nil {
		t.Fatalf("client rejected server signature: %v", err)
	}
	return ex.Identity(), nil
}

func TestScramXdgClient(t *testing.T) {
	replaceNonce := func(s string) string {
		return strings.Replace(s, ",r=", ",r=X", 1)
	}
	flipProof := func(s string) string {
		i := strings.LastIndex(s, ",p=")
		proof, err := base64.StdEncoding.DecodeString(s[i+3:])
		if err != nil {
			panic(err)
		}
		proof[0] ^= 1
		return s[:i+3] + base64.StdEncoding.EncodeToString(proof)
	}
	shortProof := func(s string) string {
		return s[:strings.LastIndex(s, ",p=")] + ",p=" + base64.StdEncoding.EncodeToString([]byte("short"))
	}
	for _, mech := range scramMechs {
		for _, tc := range []struct {
			name       string
			user, pass string
			zid        string
			tamper     func(string) string
			wantReason string // "" means success
		}{
			{name: "ok", user: "alice", pass: "alice-secret"},
			{name: "escaped user name", user: "we,ird=name", pass: "pw"},
			{name: "authzid echoed in c=", user: "alice", pass: "alice-secret", zid: "alice"},
			{name: "authzid differs", user: "alice", pass: "alice-secret", zid: "bob", wantReason: "authorization id"},
			{name: "wrong password", user: "alice", pass: "nope", wantReason: "proof invalid"},
			{name: "unknown user", user: "mallory", pass: "nope", wantReason: "unknown user"},
			{name: "wrong nonce", user: "alice", pass: "alice-secret", tamper: replaceNonce, wantReason: "nonce"},
			{name: "bad proof", user: "alice", pass: "alice-secret", tamper: flipProof, wantReason: "proof invalid"},
			{name: "short proof", user: "alice", pass: "alice-secret", tamper: shortProof, wantReason: "client-final-message"},
		} {
			t.Run(mech+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t)
				c, err := NewScramCredentials(mech, "pw", DefaultScramIterations)
				if err != nil {
					t.Fatal(err)
				}
				f.store.creds[mech]["we,ird=name"] = c
				client, err := xdgHash(mech).NewClient(tc.user, tc.pass, tc.zid)
				if err != nil {
					t.Fatal(err)
				}
				id, err := xdgConverse(t, f.mechanism(mech).Start(), client.NewConversation(), tc.tamper)
				if tc.wantReason == "" {
					if err != nil || id.Principal != tc.user || !id.Expiry.IsZero() {
						t.Fatalf("got %+v, %v", id, err)
					}
					return
				}
				wantMsg := genericMsg(mech)
				if tc.zid != "" {
					wantMsg = scramAuthzMismatch
				}
				var ae *AuthError
				if !errors.As(err, &ae) || ae.Code != 58 || ae.Message != wantMsg {
					t.Fatalf("got %v, want the generic failure", err)
				}
				if !strings.Contains(ae.Err.Error(), tc.wantReason) {
					t.Fatalf("reason %q does not mention %q", ae.Err, tc.wantReason)
				}
				if strings.Contains(err.Error(), tc.pass) {
					t.Fatalf("password in %v", err)
				}
			})
		}
	}
}

// TestScramUnknownUserLooksReal checks that an unknown user gets a
// server-first-message shaped like a real one, with the same salt on every
// attempt, so neither the reply nor a retry tells users apart.
func TestScramUnknownUserLooksReal(t *testing.T) {
	for _, mech := range scramMechs {
		f := newFixture(t)
		m := f.mechanism(mech)
		first := func(user string) (salt []byte, iters string) {
			_, msg, err := franzScram(mech, kscram.Auth{User: user, Pass: "x"}).Authenticate(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			s1, _, err := m.Start().Step(context.Background(), msg)
			if err != nil {
				t.Fatalf("%s: first step failed: %v", user, err)
			}
			parts := strings.Split(string(s1), ",")
			salt, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(parts[1], "s="))
			if err != nil {
				t.Fatal(err)
			}
			return salt, parts[2]
		}
		realSalt, realIters := first("alice")
		fake1, fakeIters := first("mallory")
		fake2, _ := first("mallory")
		other, _ := first("trudy")
		if len(fake1) != len(realSalt) || fakeIters != realIters {
			t.Fatalf("%s: fake salt %d bytes %s, real %d bytes %s", mech, len(fake1), fakeIters, len(realSalt), realIters)
		}
		if !bytes.Equal(fake1, fake2) || bytes.Equal(fake1, other) {
			t.Fatalf("%s: fake salts not stable per user", mech)
		}
	}
}

func TestScramStoreProblems(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(*scramStore)
		reason string
	}{
		{name: "back end down", mutate: func(s *scramStore) { s.err = errors.New("db down") }, reason: "could not be obtained"},
		{name: "too few iterations", mutate: func(s *scramStore) {
			c := s.creds[MechanismScramSHA256]["alice"]
			c.Iterations = 1000
			s.creds[MechanismScramSHA256]["alice"] = c
		}, reason: "less than the minimum"},
		{name: "wrong key size", mutate: func(s *scramStore) {
			c := s.creds[MechanismScramSHA256]["alice"]
			c.StoredKey = c.StoredKey[:10]
			s.creds[MechanismScramSHA256]["alice"] = c
		}, reason: "keys are not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.mutate(f.store)
			_, msg, _ := kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism().Authenticate(ctx, "")
			_, _, err := f.mechanism(MechanismScramSHA256).Start().Step(ctx, msg)
			var ae *AuthError
			if !errors.As(err, &ae) || ae.Message != genericMsg(MechanismScramSHA256) || !strings.Contains(ae.Err.Error(), tc.reason) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestScramClientFirstRefused(t *testing.T) {
	f := newFixture(t)
	for _, msg := range []string{
		"",
		"y,,n=alice,r=abc",          // channel binding supported by client
		"p=tls-unique,,n=alice,r=a", // channel binding required by client
		"n,,n=alice",                // no nonce
		"n,,n=,r=abc",               // empty user
		"n,,n=al=ice,r=abc",         // bad escape
		"n,x,n=alice,r=abc",         // bad authzid field
		"n,,r=abc,n=alice",          // fields out of order
		"n,,n=alice,r=abc,tokenauth=TRUE",
	} {
		_, _, err := f.mechanism(MechanismScramSHA256).Start().Step(context.Background(), []byte(msg))
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Message != genericMsg(MechanismScramSHA256) {
			t.Errorf("%q: got %v", msg, err)
		}
	}
	// The xdg-go client's "y" flag (advertising channel binding) is refused.
	client, _ := xscram.SHA256.NewClient("alice", "alice-secret", "")
	if _, err := xdgConverse(t, f.mechanism(MechanismScramSHA256).Start(), client.NewConversationAdvertisingChannelBinding(), nil); err == nil {
		t.Fatal("gs2 flag y accepted")
	}
}

func TestScramCredentialsHelpers(t *testing.T) {
	if _, err := NewScramCredentials(MechanismScramSHA256, "pw", 4095); err == nil {
		t.Error("accepted 4095 iterations")
	}
	if _, err := NewScramCredentials("SCRAM-SHA-1", "pw", 4096); err == nil {
		t.Error("accepted SCRAM-SHA-1")
	}
	if _, err := NewScramCredentials(MechanismScramSHA256, "", 4096); err == nil {
		t.Error("accepted an empty password")
	}
	a, _ := NewScramCredentials(MechanismScramSHA512, "pw", 8192)
	b, _ := NewScramCredentials(MechanismScramSHA512, "pw", 8192)
	if bytes.Equal(a.Salt, b.Salt) || len(a.Salt) != scramSaltLen || len(a.StoredKey) != 64 || a.Iterations != 8192 {
		t.Fatalf("bad credentials %+v", a)
	}
	c, _ := ScramCredentialsWithSalt(MechanismScramSHA512, "pw", a.Salt, 8192)
	if !bytes.Equal(c.StoredKey, a.StoredKey) || !bytes.Equal(c.ServerKey, a.ServerKey) {
		t.Fatal("same salt, different keys")
	}
	// The derived credentials match what xdg-go's own client derives.
	cl, _ := xscram.SHA512.NewClientUnprepped("", "pw", "")
	x, _ := cl.GetStoredCredentialsWithError(xscram.KeyFactors{Salt: string(a.Salt), Iters: 8192})
	if !bytes.Equal(x.StoredKey, a.StoredKey) {
		t.Fatal("keys differ from xdg-go's")
	}
}
