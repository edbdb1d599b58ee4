package auth

import (
	"bytes"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"", "\x00alice\x00alice-secret", "alice\x00alice\x00alice-secret", "\x00\x00", "a\x00b\x00c\x00d", "\xff\x00\xfe\x00\xfd"} {
		f.Add([]byte(s))
	}
	users := passwords{"alice": "alice-secret"}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if a, u, p, err := parsePlain(msg); err == nil && len(a)+len(u)+len(p)+2 != len(msg) {
			t.Fatalf("fields do not add up: %q %q %q", a, u, p)
		}
		reply, done, err := NewPlain(users).Start().Step(context.Background(), msg)
		if done == (err != nil) || (done && len(reply) != 0) {
			t.Fatalf("done=%v err=%v reply=%q", done, err, reply)
		}
		// Whatever the user and authzid, a password never reaches the error.
		if a, u, _, perr := parsePlain(msg); perr == nil {
			const marker = "PW-MARKER-8f3a1c"
			withMarker := []byte(a + "\x00" + u + "\x00" + marker)
			_, _, err := NewPlain(users).Start().Step(context.Background(), withMarker)
			if err != nil && !bytes.Contains([]byte(a+u), []byte(marker)) && bytes.Contains([]byte(err.Error()), []byte(marker)) {
				t.Fatalf("password in error %v", err)
			}
		}
	})
}

func FuzzParseOAuthBearer(f *testing.F) {
	for _, s := range []string{
		"n,,\x01auth=Bearer alice-token\x01\x01",
		"n,a=alice,\x01auth=Bearer alice-token\x01k=v\x01\x01",
		"n,,\x01auth=bearer  x.y.z\x01\x01",
		"n,,\x01\x01", "\x01", "", "y,,\x01auth=Bearer t\x01\x01",
	} {
		f.Add([]byte(s))
	}
	v := &tokens{ids: map[string]Identity{"alice-token": {Principal: "alice"}}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := parseOAuthBearer(msg)
		if err == nil {
			if !validBearerToken(r.token) {
				t.Fatalf("accepted token %q", r.token)
			}
			if _, ok := r.extensions["auth"]; ok {
				t.Fatal("auth left in extensions")
			}
		}
		ex := NewOAuthBearer(v).Start()
		reply, done, err := ex.Step(context.Background(), msg)
		if done && err != nil {
			t.Fatal("done with an error")
		}
		if !done && err == nil && len(reply) == 0 {
			t.Fatal("neither done, failed nor challenged")
		}
		// The client's %x01 after a challenge must end the exchange.
		if !done && err == nil {
			if _, done, err := ex.Step(context.Background(), []byte{1}); done || err == nil {
				t.Fatal("0x01 after a challenge did not fail")
			}
		}
	})
}

// FuzzScramServer feeds two arbitrary SaslAuthenticate payloads through a
// Server after a SCRAM-SHA-256 handshake.
func FuzzScramServer(f *testing.F) {
	fx := newFixture(f)
	_, first, err := kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism().Authenticate(context.Background(), "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(first, []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("n,,n=mallory,r=abc"), []byte("c=biws,r=abc,p=dGVzdA=="))
	f.Add([]byte("n,a=alice,n=alice,r=x,tokenauth=true"), []byte{})
	f.Add([]byte("n,,n=a=2Cb,r=x,ext=1"), []byte("c=,r=,p="))
	f.Add([]byte{}, []byte{0xff})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s, err := NewServer(Config{Mechanisms: fx.mechs, Now: fx.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.SetVersion(1)
		req.Mechanism = MechanismScramSHA256
		if _, out, _ := s.HandleHandshake(req); out != Continue {
			t.Fatal("handshake refused")
		}
		for i, msg := range [][]byte{a, b} {
			areq := kmsg.NewPtrSASLAuthenticateRequest()
			areq.SetVersion(int16(i + 1))
			areq.SASLAuthBytes = msg
			resp, out, err := s.HandleAuthenticate(context.Background(), areq)
			if resp == nil {
				t.Fatal("nil response")
			}
			_ = resp.AppendTo(nil)
			if out == Authenticated {
				t.Fatalf("authenticated from fuzz input %q %q", a, b)
			}
			if (out == Close) != (err != nil) {
				t.Fatalf("outcome %v with error %v", out, err)
			}
			if out == Close {
				return
			}
		}
	})
}
