// Package idtoken holds the token components the proxy we replace builds
// in, so that a --*-command naming one of them needs no plugin binary:
// google-id-info checks Google ID tokens, google-id-provider obtains them
// for a service account or a user, and oidc-provider obtains access tokens
// from any OAuth 2.0 token endpoint. Each takes the parameters (--*-param)
// that component takes there.
package idtoken

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/jwt"
)

// The component names.
const (
	GoogleIDInfo     = "google-id-info"
	GoogleIDProvider = "google-id-provider"
	OIDCProvider     = "oidc-provider"
)

// IsProvider reports whether command names a built-in token provider.
func IsProvider(command string) bool { return command == GoogleIDProvider || command == OIDCProvider }

// IsInfo reports whether command names a built-in token checker.
func IsInfo(command string) bool { return command == GoogleIDInfo }

// Provider hands out tokens, cached until a minute before they expire.
type Provider interface {
	Token(ctx context.Context) (string, error)
}

// NewProvider starts the named provider with its parameters and fetches a
// first token, so that wrong credentials fail at start.
func NewProvider(ctx context.Context, name string, params []string, log *slog.Logger) (Provider, error) {
	var p *cachingProvider
	var err error
	switch name {
	case GoogleIDProvider:
		p, err = newGoogleProvider(params, log)
	case OIDCProvider:
		p, err = newOIDCProvider(params, log)
	default:
		return nil, fmt.Errorf("%q is not a built-in token provider (%s, %s)", name, GoogleIDProvider, OIDCProvider)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := p.Token(ctx); err != nil {
		return nil, fmt.Errorf("%s: first token: %w", name, err)
	}
	return p, nil
}

// renewBefore is how long before its expiry a token is replaced, as there.
const renewBefore = time.Minute

// maxExp is the latest exp accepted (9999-12-31): a larger number would
// overflow the conversion to a time.
const maxExp = 253402300799

// maxBody bounds what is read of a token endpoint's answer.
const maxBody = 1 << 20

// fetchFunc obtains a new token.
type fetchFunc func(ctx context.Context) (string, error)

// cachingProvider reuses a token until renewBefore its expiry.
type cachingProvider struct {
	name    string
	timeout time.Duration
	fetch   fetchFunc
	now     func() time.Time
	log     *slog.Logger

	mu     sync.Mutex
	token  string
	expiry time.Time
}

func (p *cachingProvider) Token(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token != "" && p.now().Before(p.expiry.Add(-renewBefore)) {
		return p.token, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	tok, err := p.fetch(ctx)
	if err != nil {
		return "", err
	}
	exp, err := expiryOf(tok)
	if err != nil {
		return "", fmt.Errorf("the token endpoint's token: %w", err)
	}
	p.token, p.expiry = tok, exp
	p.log.Info("new token", "component", p.name, "expires", exp.UTC().Format(time.RFC3339))
	return tok, nil
}

// expiryOf reads the exp claim of a JWT without verifying it: the proxy
// only needs to know when to ask for a new one; the broker or gateway
// checks the signature.
func expiryOf(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("JWT payload: %w", err)
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, fmt.Errorf("JWT payload: %w", err)
	}
	if claims.Exp < 1 {
		return time.Time{}, errors.New("no exp claim")
	}
	if claims.Exp > maxExp {
		return time.Time{}, fmt.Errorf("exp %g is not a time", claims.Exp)
	}
	return time.Unix(int64(claims.Exp), 0), nil
}

// parseParams parses a component's --*-param list as that component does
// (Go flag syntax); unknown parameters are an error.
func parseParams(name string, params []string, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	if err := fs.Parse(params); err != nil {
		return fmt.Errorf("parameters: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("parameters: unexpected %q", fs.Arg(0))
	}
	return nil
}

// checkEndpoint accepts https URLs, and http ones to a loopback address
// (a local token service): credentials never travel in clear elsewhere.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if !jwt.SecureURL(u) {
		return fmt.Errorf("%q: want an https URL (http only to a loopback address)", raw)
	}
	return nil
}

// postForm sends a token request and decodes the JSON answer into out.
// A refusal is reported with the endpoint's error fields only (RFC 6749
// 5.2), never with what was sent.
func postForm(ctx context.Context, client *http.Client, endpoint string, form url.Values, basic *[2]string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &endpointError{status: resp.StatusCode, body: body}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("token endpoint answer: %w", err)
	}
	return nil
}

// endpointError is a token endpoint's refusal.
type endpointError struct {
	status int
	body   []byte
}

func (e *endpointError) Error() string {
	var fields struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(e.body, &fields)
	if fields.Error == "" {
		return fmt.Sprintf("token endpoint answered %d", e.status)
	}
	return fmt.Sprintf("token endpoint answered %d: %s %s", e.status, fields.Error, fields.Description)
}

func httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}
