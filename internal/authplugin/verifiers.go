package authplugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
)

// Passwords checks PLAIN passwords with a password-authenticator plugin.
type Passwords struct{ h *Host }

var _ auth.PasswordVerifier = Passwords{}

// NewPasswords returns the verifier over h (of kind PasswordAuthenticator).
func NewPasswords(h *Host) Passwords { return Passwords{h: h} }

// VerifyPassword asks the plugin; "not authenticated" is the client's
// fault, a plugin that does not answer is not.
func (p Passwords) VerifyPassword(ctx context.Context, user, password string) error {
	resp, err := p.h.call(ctx, map[string]any{"username": user, "password": password})
	if err != nil {
		return err
	}
	if !boolField(resp, "authenticated") {
		return fmt.Errorf("%w: the plugin refused (status %d)", auth.ErrInvalidCredentials, int32Field(resp, "status"))
	}
	return nil
}

// Tokens checks OAUTHBEARER tokens with a token-info plugin.
//
// The plugin protocol answers only yes or no, but a session needs a
// principal: it is the token's PrincipalClaim (as --auth-local-jwt-principal-claim
// names it, default sub), read from the JWT the plugin has just vouched
// for, and the session ends at its exp. A token accepted by the plugin that
// is not a JWT, or names no principal, is refused: an authenticated client
// without a name would be no one to authorize.
type Tokens struct {
	h              *Host
	principalClaim string
}

var _ auth.TokenVerifier = Tokens{}

// NewTokens returns the verifier over h (of kind TokenInfo).
func NewTokens(h *Host, principalClaim string) Tokens {
	if principalClaim == "" {
		principalClaim = "sub"
	}
	return Tokens{h: h, principalClaim: principalClaim}
}

// VerifyToken asks the plugin, then names the token's principal.
func (t Tokens) VerifyToken(ctx context.Context, token string) (string, time.Time, error) {
	resp, err := t.h.call(ctx, map[string]any{"token": token, "params": []string{}})
	if err != nil {
		return "", time.Time{}, &auth.TokenError{Status: "invalid_token", Err: err}
	}
	if !boolField(resp, "success") {
		return "", time.Time{}, &auth.TokenError{Err: fmt.Errorf("the plugin refused the token (status %d)", int32Field(resp, "status"))}
	}
	principal, expiry, err := claims(token, t.principalClaim)
	if err != nil {
		return "", time.Time{}, &auth.TokenError{Err: fmt.Errorf("the plugin accepted the token, but %w", err)}
	}
	return principal, expiry, nil
}

// claims reads the principal and expiry of a compact JWT (signed or
// unsecured) without checking it: the plugin did.
func claims(token, principalClaim string) (string, time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", time.Time{}, errors.New("it is not a JWT, so it names no principal")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", time.Time{}, errors.New("its JWT payload is not base64url")
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", time.Time{}, errors.New("its JWT payload is not a JSON object")
	}
	principal, _ := c[principalClaim].(string)
	if principal == "" {
		return "", time.Time{}, fmt.Errorf("its %q claim is missing or not a string", principalClaim)
	}
	var expiry time.Time
	if exp, ok := c["exp"].(float64); ok && exp > 0 {
		expiry = time.Unix(int64(exp), 0)
		if time.Now().After(expiry) {
			return "", time.Time{}, fmt.Errorf("it expired at %s", expiry.UTC().Format(time.RFC3339))
		}
	}
	return principal, expiry, nil
}

// Provider hands out OAUTHBEARER tokens from a token-provider plugin
// (--sasl-plugin-*).
type Provider struct{ h *Host }

// NewProvider returns the token source over h (of kind TokenProvider).
func NewProvider(h *Host) Provider { return Provider{h: h} }

// Token asks the plugin for a token.
func (p Provider) Token(ctx context.Context) (string, error) {
	resp, err := p.h.call(ctx, map[string]any{"params": []string{}})
	if err != nil {
		return "", err
	}
	if !boolField(resp, "success") {
		return "", fmt.Errorf("the token plugin gave no token (status %d)", int32Field(resp, "status"))
	}
	tok, _ := resp["token"].(string)
	if tok == "" {
		return "", errors.New("the token plugin answered success with an empty token")
	}
	return tok, nil
}

// Accepts asks a token-info plugin whether token is valid, for the gateway
// handshake, which needs no principal.
func Accepts(h *Host) func(ctx context.Context, token string) error {
	return func(ctx context.Context, token string) error {
		resp, err := h.call(ctx, map[string]any{"token": token, "params": []string{}})
		if err != nil {
			return err
		}
		if !boolField(resp, "success") {
			return fmt.Errorf("the token-info plugin refused it (status %d)", int32Field(resp, "status"))
		}
		return nil
	}
}
