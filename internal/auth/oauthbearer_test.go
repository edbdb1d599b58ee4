package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

func TestOAuthBearer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		auth      oauth.Auth
		principal string // "" means the token is rejected
		challenge string
	}{
		{name: "ok", auth: oauth.Auth{Token: "alice-token"}, principal: "alice"},
		{name: "extensions", auth: oauth.Auth{Token: "alice-token", Extensions: map[string]string{"traceId": "abc 123", "logicalCluster": "lkc-1"}}, principal: "alice"},
		{name: "authzid equal to principal", auth: oauth.Auth{Zid: "alice", Token: "alice-token"}, principal: "alice"},
		{name: "no expiry", auth: oauth.Auth{Token: "forever"}, principal: "carol"},
		{name: "bad token", auth: oauth.Auth{Token: "forged.jwt.value"}, challenge: `{"status":"invalid_token"}`},
		{name: "token error with scope", auth: oauth.Auth{Token: "scoped"}, challenge: `{"status":"invalid_token", "scope":"kafka"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for v := int16(0); v <= 2; v++ {
				s := f.server(t, 0)
				r := clientAuth(t, s, tc.auth.AsMechanism(), v)
				if tc.principal != "" {
					if r.outcome != Authenticated || s.Identity().Principal != tc.principal {
						t.Fatalf("v%d: %+v identity %+v", v, r, s.Identity())
					}
					continue
				}
				// franz-go's client refuses the error challenge, which the
				// server sent as a successful SASL step.
				if r.code != 0 || r.outcome != Continue || r.clientErr == nil {
					t.Fatalf("v%d: %+v", v, r)
				}
				// A Java client answers the challenge with %x01; then
				// authentication fails with the challenge as the message.
				resp, out, err := authenticate(t, s, v, []byte{0x01})
				if out != Close || resp.ErrorCode != 58 || *resp.ErrorMessage != tc.challenge || err == nil {
					t.Fatalf("v%d: after %%x01: %v %+v %v", v, out, resp, err)
				}
				if strings.Contains(err.Error(), tc.auth.Token) || strings.Contains(*resp.ErrorMessage, tc.auth.Token) {
					t.Fatalf("token leaked: %v", err)
				}
			}
		})
	}
}

func TestOAuthBearerChallengeBytes(t *testing.T) {
	f := newFixture(t)
	ex := f.mechanism(MechanismOAuthBearer).Start()
	ctx := context.Background()
	reply, done, err := ex.Step(ctx, []byte("n,,\x01auth=Bearer nope\x01\x01"))
	if err != nil || done || string(reply) != `{"status":"invalid_token"}` {
		t.Fatalf("got %q %v %v", reply, done, err)
	}
	// Kafka lets the client start over instead of sending %x01.
	reply, done, err = ex.Step(ctx, []byte("n,,\x01auth=Bearer bob-token\x01\x01"))
	if err != nil || !done || len(reply) != 0 || ex.Identity().Principal != "bob" {
		t.Fatalf("retry: %q %v %v", reply, done, err)
	}
}

func TestOAuthBearerAuthzidMismatch(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.mechanism(MechanismOAuthBearer).Start().Step(context.Background(), []byte("n,a=bob,\x01auth=Bearer alice-token\x01\x01"))
	var ae *AuthError
	want := "Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)"
	if !errors.As(err, &ae) || ae.Message != want {
		t.Fatalf("got %v", err)
	}
}

func TestParseOAuthBearer(t *testing.T) {
	for _, tc := range []struct {
		msg     string
		authzid string
		token   string
		ext     map[string]string
		bad     bool
	}{
		{msg: "n,,\x01auth=Bearer abc.DEF-_9\x01\x01", token: "abc.DEF-_9"},
		{msg: "n,,\x01auth=bearer   abc\x01\x01", token: "abc"},
		{msg: "n,a=user=2Cx,\x01auth=Bearer t\x01\x01", authzid: "user=2Cx", token: "t"},
		{msg: "n,,\x01a=b=c\x01auth=Bearer t\x01Zed=v v\t\x01\x01", token: "t", ext: map[string]string{"a": "b=c", "Zed": "v v\t"}},
		{msg: "n,,\x01auth=Bearer old\x01auth=Bearer new\x01\x01", token: "new"},
		{msg: "", bad: true},
		{msg: "y,,\x01auth=Bearer t\x01\x01", bad: true},
		{msg: "n,,auth=Bearer t\x01\x01", bad: true},
		{msg: "n,,\x01auth=Bearer t\x01", bad: true},
		{msg: "n,,\x01auth=Bearer t", bad: true},
		{msg: "n,,\x01\x01", bad: true},
		{msg: "n,,\x01auth=Basic t\x01\x01", bad: true},
		{msg: "n,,\x01auth=Bearer\x01\x01", bad: true},
		{msg: "n,,\x01auth=Bearer t/u\x01\x01", bad: true},
		{msg: "n,,\x01auth=Bearer t\x01k1=v\x01\x01", bad: true},
		{msg: "n,,\x01auth=Bearer t\x01k=\x01\x01", bad: true},
		{msg: "n,,\x01auth=Bearer t\x01\x01\x01", bad: true},
		{msg: "n,a=,\x01auth=Bearer t\x01\x01", bad: true},
		{msg: "n,a=x=y,\x01auth=Bearer t\x01\x01", bad: true},
		{msg: "n,b=x,\x01auth=Bearer t\x01\x01", bad: true},
	} {
		r, err := parseOAuthBearer([]byte(tc.msg))
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted", tc.msg)
			}
			continue
		}
		if err != nil || r.authzid != tc.authzid || r.token != tc.token || len(r.extensions) != len(tc.ext) {
			t.Errorf("%q: got %+v %v", tc.msg, r, err)
			continue
		}
		for k, v := range tc.ext {
			if r.extensions[k] != v {
				t.Errorf("%q: extension %s = %q, want %q", tc.msg, k, r.extensions[k], v)
			}
		}
	}
}
