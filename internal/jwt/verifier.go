// Package jwt verifies OAUTHBEARER tokens for local SASL: signed JWTs
// checked against a JSON Web Key Set from a file or a URL, with the issuer,
// audience and clock skew a broker's OAuth validator is given. Only
// asymmetric signatures (RS, PS, ES) are accepted: never "none", and never
// an HMAC keyed with a public key.
package jwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
)

// Algorithms are the signature algorithms accepted.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// MaxTokenSize bounds a token before it is parsed (the SASL server's
// message cap is larger).
const MaxTokenSize = 16 << 10

// Config is what a Verifier checks.
type Config struct {
	// Issuer, if set, must equal the token's iss.
	Issuer string
	// Audience, if set, must be one of the token's aud.
	Audience string
	// PrincipalClaim names the claim holding the principal's name ("sub"
	// if empty); it must be a non-empty string.
	PrincipalClaim string
	// ClockSkew is allowed on exp, nbf and iat.
	ClockSkew time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Check, if set, is a further check of a verified token's claims
	// (several accepted issuers or audiences, an e-mail pattern).
	Check func(claims map[string]any) error
}

// Keys supplies the key set; Refresh is asked for once when a token names
// a key id the set lacks (a rotation the cache has not seen yet).
type Keys interface {
	Current(ctx context.Context) (*jose.JSONWebKeySet, error)
	Refresh(ctx context.Context) (*jose.JSONWebKeySet, error)
}

// Verifier implements auth.TokenVerifier.
type Verifier struct {
	cfg  Config
	keys Keys
	log  *slog.Logger
}

// New returns a verifier of tokens signed by keys.
func New(cfg Config, keys Keys, log *slog.Logger) *Verifier {
	if cfg.PrincipalClaim == "" {
		cfg.PrincipalClaim = "sub"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg, keys: keys, log: log}
}

// VerifyToken checks the token's signature and claims and returns the
// principal and the expiry. Errors say why without the token.
func (v *Verifier) VerifyToken(ctx context.Context, token string) (string, time.Time, error) {
	if len(token) > MaxTokenSize {
		return "", time.Time{}, invalid(fmt.Errorf("token of %d bytes, limit %d", len(token), MaxTokenSize))
	}
	tok, err := josejwt.ParseSigned(token, Algorithms)
	if err != nil {
		return "", time.Time{}, invalid(fmt.Errorf("not a JWT signed with %s: %w", algNames(), err))
	}
	if len(tok.Headers) != 1 {
		return "", time.Time{}, invalid(errors.New("a JWT has one signature"))
	}
	head := tok.Headers[0]
	set, err := v.keys.Current(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("jwks: %w", err)
	}
	keys := candidates(set, head)
	if len(keys) == 0 && head.KeyID != "" {
		if set, err = v.keys.Refresh(ctx); err != nil {
			v.log.Warn("jwks refresh for an unknown key id failed", "kid", head.KeyID, "err", err)
		} else {
			keys = candidates(set, head)
		}
	}
	if len(keys) == 0 {
		return "", time.Time{}, invalid(fmt.Errorf("no key in the JWKS for kid %q and alg %s", head.KeyID, head.Algorithm))
	}
	for _, k := range keys {
		var claims josejwt.Claims
		var all map[string]any
		if err = tok.Claims(k.Key, &claims, &all); err == nil {
			return v.check(claims, all)
		}
	}
	return "", time.Time{}, invalid(fmt.Errorf("signature not verified: %w", err))
}

// check validates the claims of a verified token.
func (v *Verifier) check(c josejwt.Claims, all map[string]any) (string, time.Time, error) {
	now := v.cfg.Now()
	if c.Expiry == nil {
		return "", time.Time{}, invalid(errors.New("no exp claim"))
	}
	exp := c.Expiry.Time()
	expected := josejwt.Expected{Issuer: v.cfg.Issuer, Time: now}
	if v.cfg.Audience != "" {
		expected.AnyAudience = josejwt.Audience{v.cfg.Audience}
	}
	if err := c.ValidateWithLeeway(expected, v.cfg.ClockSkew); err != nil {
		return "", time.Time{}, invalid(claimError(err, c, v.cfg, now))
	}
	if v.cfg.Check != nil {
		if err := v.cfg.Check(all); err != nil {
			return "", time.Time{}, invalid(err)
		}
	}
	name, _ := all[v.cfg.PrincipalClaim].(string)
	if strings.TrimSpace(name) == "" {
		return "", time.Time{}, invalid(fmt.Errorf("no string %q claim for the principal", v.cfg.PrincipalClaim))
	}
	return name, exp, nil
}

// claimError words a claim failure for the log.
func claimError(err error, c josejwt.Claims, cfg Config, now time.Time) error {
	switch {
	case errors.Is(err, josejwt.ErrExpired):
		return fmt.Errorf("expired at %s (now %s, skew %v)", c.Expiry.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), cfg.ClockSkew)
	case errors.Is(err, josejwt.ErrNotValidYet):
		return fmt.Errorf("not valid before %s (now %s, skew %v)", c.NotBefore.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), cfg.ClockSkew)
	case errors.Is(err, josejwt.ErrIssuedInTheFuture):
		return fmt.Errorf("issued in the future (iat %s, now %s)", c.IssuedAt.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case errors.Is(err, josejwt.ErrInvalidIssuer):
		return fmt.Errorf("issuer %q, want %q", c.Issuer, cfg.Issuer)
	case errors.Is(err, josejwt.ErrInvalidAudience):
		return fmt.Errorf("audience %q does not include %q", []string(c.Audience), cfg.Audience)
	}
	return err
}

// candidates are the set's public signing keys that may have signed a
// token with this header: the key id's, or without a kid, every key of a
// matching type.
func candidates(set *jose.JSONWebKeySet, head jose.Header) []jose.JSONWebKey {
	if set == nil {
		return nil
	}
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != head.Algorithm {
			continue
		}
		if head.KeyID != "" && k.KeyID != head.KeyID {
			continue
		}
		out = append(out, k)
	}
	return out
}

func algNames() string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return strings.Join(names, "/")
}

// invalid is a token rejection (RFC 7628 status invalid_token); the
// reason is for the log only.
func invalid(reason error) error {
	return &auth.TokenError{Status: "invalid_token", Err: reason}
}
