package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
)

type signer struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // private
	pub any
}

func newRSA(t testing.TB, kid string, alg jose.SignatureAlgorithm) signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid, alg, k, &k.PublicKey}
}

func newEC(t testing.TB, kid string) signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid, jose.ES256, k, &k.PublicKey}
}

func (s signer) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.pub, KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

func (s signer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.kid != "" {
		opts = opts.WithHeader("kid", s.kid)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(sg).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func writeJWKS(t testing.TB, path string, signers ...signer) {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, s := range signers {
		set.Keys = append(set.Keys, s.jwk())
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rs, ps, es := newRSA(t, "rsa-1", jose.RS256), newRSA(t, "rsa-pss", jose.PS256), newEC(t, "ec-1")
	other := newEC(t, "ec-1") // same kid, other key: a forged signature
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, rs, ps, es)
	keys, err := OpenFile(path, time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := New(Config{Issuer: "https://idp.example", Audience: "kafka", ClockSkew: 30 * time.Second, Now: func() time.Time { return now }}, keys, nil)
	good := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "orders", "iss": "https://idp.example", "aud": []string{"kafka", "other"}, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		for k, val := range extra {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return c
	}
	for _, s := range []signer{rs, ps, es} {
		p, exp, err := v.VerifyToken(context.Background(), s.sign(t, good(nil)))
		if err != nil || p != "orders" || !exp.Equal(now.Add(time.Hour)) {
			t.Errorf("%s: %q %v %v", s.alg, p, exp, err)
		}
	}
	hmacWithPublicKey := func() string {
		der, _ := x509.MarshalPKIXPublicKey(rs.pub)
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"rsa-1","typ":"JWT"}`))
		body, _ := json.Marshal(good(nil))
		signing := head + "." + base64.RawURLEncoding.EncodeToString(body)
		m := hmac.New(sha256.New, der)
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	none := func() string {
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		body, _ := json.Marshal(good(nil))
		return head + "." + base64.RawURLEncoding.EncodeToString(body) + "."
	}
	for name, tc := range map[string]struct {
		token  string
		reason string
	}{
		"expired":                      {es.sign(t, good(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "expired"},
		"expired within skew":          {"", ""},
		"not yet valid":                {es.sign(t, good(map[string]any{"nbf": now.Add(time.Hour).Unix()})), "not valid before"},
		"wrong audience":               {es.sign(t, good(map[string]any{"aud": "billing"})), "audience"},
		"wrong issuer":                 {es.sign(t, good(map[string]any{"iss": "https://evil.example"})), "issuer"},
		"no exp":                       {es.sign(t, good(map[string]any{"exp": nil})), "no exp"},
		"no sub":                       {es.sign(t, good(map[string]any{"sub": nil})), `"sub"`},
		"forged signature":             {other.sign(t, good(nil)), "signature not verified"},
		"alg none":                     {none(), "not a JWT"},
		"hmac with the rsa public key": {hmacWithPublicKey(), "not a JWT"},
		"garbage":                      {"a.b.c", "not a JWT"},
		"oversized":                    {strings.Repeat("a", MaxTokenSize+1), "limit"},
		"unknown kid":                  {newEC(t, "ec-9").sign(t, good(nil)), "no key in the JWKS"},
	} {
		if tc.token == "" {
			continue
		}
		_, _, err := v.VerifyToken(context.Background(), tc.token)
		var te *auth.TokenError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v, want a token error saying %q", name, err, tc.reason)
		}
	}
	if _, _, err := v.VerifyToken(context.Background(), es.sign(t, good(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}))); err != nil {
		t.Errorf("expired 10 s ago with 30 s skew: %v", err)
	}

	// A rotation: a token of a new key is accepted once the file has it
	// (its unknown kid makes the verifier look again).
	next := newRSA(t, "rsa-2", jose.RS512)
	writeJWKS(t, path, rs, next)
	if p, _, err := v.VerifyToken(context.Background(), next.sign(t, good(nil))); err != nil || p != "orders" {
		t.Errorf("rotated key: %q %v", p, err)
	}
	if _, _, err := v.VerifyToken(context.Background(), es.sign(t, good(nil))); err == nil {
		t.Error("a key removed from the file still verifies")
	}

	// The principal claim is configurable.
	v2 := New(Config{PrincipalClaim: "client_id", Now: func() time.Time { return now }}, keys, nil)
	if p, _, err := v2.VerifyToken(context.Background(), rs.sign(t, good(map[string]any{"client_id": "svc-a"}))); err != nil || p != "svc-a" {
		t.Errorf("client_id principal: %q %v", p, err)
	}
}

func TestURLKeys(t *testing.T) {
	now := time.Now()
	a, b := newEC(t, "a"), newEC(t, "b")
	var current atomic.Value
	current.Store([]signer{a})
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		set := jose.JSONWebKeySet{}
		for _, s := range current.Load().([]signer) {
			set.Keys = append(set.Keys, s.jwk())
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	keys, err := OpenURL(context.Background(), srv.URL+"/jwks", "", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := New(Config{}, keys, nil)
	claims := map[string]any{"sub": "s", "exp": now.Add(time.Hour).Unix()}
	for range 3 {
		if _, _, err := v.VerifyToken(context.Background(), a.sign(t, claims)); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches for cached keys, want 1", n)
	}
	// A new key: the unknown kid makes one fetch; more unknown kids
	// within 10 s make none.
	current.Store([]signer{a, b})
	keys.tried = time.Now().Add(-time.Minute)
	if _, _, err := v.VerifyToken(context.Background(), b.sign(t, claims)); err != nil {
		t.Fatalf("new key: %v", err)
	}
	for i := range 5 {
		_, _, _ = v.VerifyToken(context.Background(), newEC(t, "made-up-"+string(rune('a'+i))).sign(t, claims))
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (made-up key ids must not refetch within 10 s)", n)
	}

	if err := CheckURL("http://idp.example/jwks"); err == nil {
		t.Error("plain http to a remote host accepted")
	}
	bad := httptest.NewServer(http.NotFoundHandler())
	defer bad.Close()
	if _, err := OpenURL(context.Background(), bad.URL, "", 0, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404 at start: %v", err)
	}
}

func TestParseKeySet(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":           "{",
		"no keys":            `{"keys":[]}`,
		"symmetric key only": `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
	} {
		if _, err := ParseKeySet([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzVerify(f *testing.F) {
	es := newEC(f, "ec-1")
	path := filepath.Join(f.TempDir(), "jwks.json")
	writeJWKS(f, path, es)
	keys, err := OpenFile(path, time.Hour, nil)
	if err != nil {
		f.Fatal(err)
	}
	v := New(Config{}, keys, nil)
	f.Add(es.sign(f, map[string]any{"sub": "s", "exp": time.Now().Add(time.Hour).Unix()}))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		p, _, err := v.VerifyToken(context.Background(), token)
		if err == nil && p == "" {
			t.Fatal("accepted with an empty principal")
		}
	})
}
