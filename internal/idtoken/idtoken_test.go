package idtoken

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/idptest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestGoogleProviderServiceAccount: a service account's signed assertion
// is exchanged for an ID token for the target audience, which is reused
// until a minute before it expires; a key the endpoint does not trust
// fails at start with the endpoint's reason, and no secret in the error.
func TestGoogleProviderServiceAccount(t *testing.T) {
	idp := idptest.Start(t)
	file := idp.ServiceAccountFile(t.TempDir())
	p, err := NewProvider(ctx(t), GoogleIDProvider, []string{"--credentials-file", file, "--target-audience", "https://gateway.example.com"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	check, err := NewInfo(ctx(t), GoogleIDInfo, []string{"--certs-url", idp.URL + "/certs", "--audience", "https://gateway.example.com",
		"--email-regex", `^gateway@project\.iam\.gserviceaccount\.com$`}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := check(ctx(t), tok); err != nil {
		t.Errorf("the provider's token is refused by google-id-info: %v", err)
	}
	if n := idp.Requests("/token"); n != 1 {
		t.Errorf("%d token requests for a start and one Token call, want 1 (cached)", n)
	}
	// Near its expiry the token is replaced.
	cp := p.(*cachingProvider)
	cp.now = func() time.Time { return time.Now().Add(time.Hour - 30*time.Second) }
	if _, err := p.Token(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := idp.Requests("/token"); n != 2 {
		t.Errorf("%d token requests after the token's renewal time, want 2", n)
	}

	// Another key in the same file: the endpoint refuses the assertion.
	other := idptest.Start(t)
	data, _ := os.ReadFile(other.ServiceAccountFile(t.TempDir()))
	forged := filepath.Join(t.TempDir(), "forged.json")
	_ = os.WriteFile(forged, []byte(strings.Replace(string(data), other.URL, idp.URL, 1)), 0o600)
	_, err = NewProvider(ctx(t), GoogleIDProvider, []string{"--credentials-file", forged, "--target-audience", "x"}, quiet())
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("an untrusted service account key: %v", err)
	}

	for _, params := range [][]string{
		{"--target-audience", "x"},                                       // no credentials
		{"--credentials-file", file},                                     // no audience
		{"--credentials-file", file, "--target-audience", "x", "--nope"}, // unknown parameter
		{"--credentials-file", filepath.Join(t.TempDir(), "missing.json"), "--target-audience", "x"},
	} {
		if _, err := NewProvider(ctx(t), GoogleIDProvider, params, quiet()); err == nil {
			t.Errorf("google-id-provider %v started", params)
		}
	}
}

// TestGoogleProviderADC: --adc finds a user's credentials through
// GOOGLE_APPLICATION_CREDENTIALS (a refresh-token grant answering an ID
// token), and without any file asks the metadata server.
func TestGoogleProviderADC(t *testing.T) {
	idp := idptest.Start(t)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", idp.AuthorizedUserFile(t.TempDir()))
	p, err := NewProvider(ctx(t), GoogleIDProvider, []string{"--adc"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := p.Token(ctx(t))
	check, err := NewInfo(ctx(t), GoogleIDInfo, []string{"--certs-url", idp.URL + "/certs", "--email-regex", `@example\.com$`, "--audience", idptest.ClientID}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := check(ctx(t), tok); err != nil {
		t.Errorf("user ID token refused: %v", err)
	}

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GCE_METADATA_HOST", idp.Host())
	p, err = NewProvider(ctx(t), GoogleIDProvider, []string{"--adc", "--target-audience", "https://gateway.example.com"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ = p.Token(ctx(t))
	if idp.Requests("/computeMetadata/v1/instance/service-accounts/default/identity") != 1 {
		t.Errorf("the metadata server was not asked")
	}
	check, _ = NewInfo(ctx(t), GoogleIDInfo, []string{"--certs-url", idp.URL + "/certs", "--email-regex", `^vm@`, "--audience", "https://gateway.example.com"}, quiet())
	if err := check(ctx(t), tok); err != nil {
		t.Errorf("metadata server ID token refused: %v", err)
	}
}

// TestGoogleInfo: each rule of google-id-info refuses its token.
func TestGoogleInfo(t *testing.T) {
	idp, other := idptest.Start(t), idptest.Start(t)
	check, err := NewInfo(ctx(t), GoogleIDInfo, []string{"--certs-url", idp.URL + "/certs", "--audience", "aud-1", "--audience", "aud-2",
		"--email-regex", `^svc-a@corp\.test$`, "--email-regex", `^svc-b@corp\.test$`}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "accounts.google.com", "aud": "aud-2", "email": "svc-b@corp.test", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		edit(c)
		return c
	}
	if err := check(ctx(t), idp.IDToken(claims(func(map[string]any) {}))); err != nil {
		t.Fatalf("good token refused: %v", err)
	}
	bad := map[string]string{
		"issuer":    idp.IDToken(claims(func(c map[string]any) { c["iss"] = "https://evil.test" })),
		"audience":  idp.IDToken(claims(func(c map[string]any) { c["aud"] = "aud-3" })),
		"email":     idp.IDToken(claims(func(c map[string]any) { c["email"] = "svc-b@corp.test.evil" })),
		"expired":   idp.IDToken(claims(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })),
		"no iat":    idp.IDToken(claims(func(c map[string]any) { delete(c, "iat") })),
		"other key": other.IDToken(claims(func(map[string]any) {})),
		"garbage":   "a.b.c",
	}
	for what, tok := range bad {
		if err := check(ctx(t), tok); err == nil {
			t.Errorf("token with a wrong %s accepted", what)
		} else if strings.Contains(err.Error(), tok) {
			t.Errorf("the refusal of %s quotes the token", what)
		}
	}
	if _, err := NewInfo(ctx(t), GoogleIDInfo, []string{"--certs-url", idp.URL + "/certs"}, quiet()); err == nil || !strings.Contains(err.Error(), "--email-regex is required") {
		t.Errorf("without --email-regex: %v", err)
	}
	if _, err := NewInfo(ctx(t), GoogleIDInfo, []string{"--certs-url", "http://192.0.2.1/certs", "--email-regex", "x"}, quiet()); err == nil {
		t.Errorf("keys over plain http to a remote host accepted")
	}
}

// TestOIDCProvider: client credentials (HTTP Basic, or the form when the
// endpoint refuses Basic) and password grants; the file is reread when it
// changes, and a broken rewrite keeps the credentials read before.
func TestOIDCProvider(t *testing.T) {
	idp := idptest.Start(t)
	dir := t.TempDir()
	for _, grant := range []string{"client_credentials", "password"} {
		p, err := NewProvider(ctx(t), OIDCProvider, []string{"--credentials-file", idp.OIDCFile(dir, grant), "--target-audience", "ignored"}, quiet())
		if err != nil {
			t.Fatalf("%s: %v", grant, err)
		}
		tok, _ := p.Token(ctx(t))
		if _, err := expiryOf(tok); err != nil {
			t.Errorf("%s: token %v", grant, err)
		}
	}
	idp.SetBodyClientAuth(true)
	file := idp.OIDCFile(dir, "client_credentials")
	p, err := NewProvider(ctx(t), OIDCProvider, []string{"--credentials-file", file}, quiet())
	if err != nil {
		t.Fatalf("an endpoint taking the client in the form only: %v", err)
	}
	// A wrong secret written over the file is read at the next fetch.
	data, _ := os.ReadFile(file)
	time.Sleep(10 * time.Millisecond)
	_ = os.WriteFile(file, []byte(strings.Replace(string(data), idptest.ClientSecret, "wrong-secret", 1)), 0o600)
	cp := p.(*cachingProvider)
	cp.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := p.Token(ctx(t)); err == nil || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("after the secret changed: %v", err)
	}
	// A broken file keeps the last good credentials (here the wrong ones).
	_ = os.WriteFile(file, []byte("{"), 0o600)
	if _, err := p.Token(ctx(t)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("after a broken rewrite: %v", err)
	}
	if _, err := NewProvider(ctx(t), OIDCProvider, []string{}, quiet()); err == nil {
		t.Errorf("oidc-provider without --credentials-file started")
	}
}

// FuzzExpiryOf: any token endpoint answer yields an expiry or an error.
func FuzzExpiryOf(f *testing.F) {
	for _, s := range []string{"a.eyJleHAiOjE3MDAwMDAwMDB9.c", "a.b.c", "", "..", "a.eyJleHAiOi0xfQ.c", "a.eyJleHAiOjFlMzA4fQ.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if exp, err := expiryOf(tok); err == nil && exp.Unix() < 1 {
			t.Fatalf("expiryOf(%q) = %v without an error", tok, exp)
		}
	})
}
