package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		name            string
		zid, user, pass string
		wantMsg         string // "" means success
	}{
		{name: "ok", user: "alice", pass: "alice-secret"},
		{name: "authzid equal to user", zid: "alice", user: "alice", pass: "alice-secret"},
		{name: "wrong password", user: "alice", pass: "nope", wantMsg: plainBadCredentials},
		{name: "unknown user", user: "mallory", pass: "alice-secret", wantMsg: plainBadCredentials},
		{name: "back end down", user: "broken", pass: "x", wantMsg: plainCannotVerify},
		{name: "authzid differs", zid: "bob", user: "alice", pass: "alice-secret", wantMsg: plainAuthzMismatch},
		{name: "authzid differs, bad password", zid: "bob", user: "alice", pass: "nope", wantMsg: plainBadCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for v := int16(0); v <= 2; v++ {
				s := f.server(t, 0)
				r := clientAuth(t, s, plain.Auth{Zid: tc.zid, User: tc.user, Pass: tc.pass}.AsMechanism(), v)
				if tc.wantMsg == "" {
					if r.outcome != Authenticated || r.code != 0 || s.Identity().Principal != tc.user {
						t.Fatalf("v%d: %+v, identity %+v", v, r, s.Identity())
					}
					continue
				}
				if r.outcome != Close || r.code != 58 || r.message != tc.wantMsg {
					t.Fatalf("v%d: got %+v, want message %q", v, r, tc.wantMsg)
				}
				if strings.Contains(r.message, tc.pass) || strings.Contains(r.err.Error(), tc.pass) {
					t.Fatalf("password leaked: %q / %v", r.message, r.err)
				}
				if s.Authenticated() {
					t.Fatal("authenticated after failure")
				}
			}
		})
	}
}

func TestPlainMalformed(t *testing.T) {
	f := newFixture(t)
	for _, msg := range []string{
		"",
		"alice-secret",
		"\x00alice",
		"\x00alice\x00alice-secret\x00",
		"\x00\x00alice-secret",
		"\x00alice\x00",
	} {
		ex := f.mechanism(MechanismPlain).Start()
		_, done, err := ex.Step(context.Background(), []byte(msg))
		var ae *AuthError
		if done || !errors.As(err, &ae) || ae.Code != 58 || ae.Message != genericMsg(MechanismPlain) {
			t.Errorf("%q: done=%v err=%v", msg, done, err)
		}
		if err != nil && strings.Contains(err.Error(), "alice-secret") {
			t.Errorf("%q: password in error %v", msg, err)
		}
	}
}

func TestParsePlain(t *testing.T) {
	a, u, p, err := parsePlain([]byte("zid\x00user\x00pa ss"))
	if err != nil || a != "zid" || u != "user" || p != "pa ss" {
		t.Fatalf("got %q %q %q %v", a, u, p, err)
	}
}
