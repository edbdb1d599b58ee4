package idtoken

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/jwt"
)

// GoogleCertsURL is where Google publishes the keys that sign its ID
// tokens (its OpenID configuration's jwks_uri).
const GoogleCertsURL = "https://www.googleapis.com/oauth2/v3/certs"

// googleIssuers are the iss values of Google ID tokens.
var googleIssuers = map[string]bool{"accounts.google.com": true, "https://accounts.google.com": true}

// stringList is a repeatable string parameter.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// NewInfo starts the named token checker with its parameters. The check
// returns nil for a token it accepts, else why not (never the token).
func NewInfo(ctx context.Context, name string, params []string, log *slog.Logger) (func(ctx context.Context, token string) error, error) {
	if name != GoogleIDInfo {
		return nil, fmt.Errorf("%q is not a built-in token checker (%s)", name, GoogleIDInfo)
	}
	check, err := newGoogleInfo(ctx, params, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return check, nil
}

// newGoogleInfo is google-id-info: a Google ID token signed by one of
// Google's current keys, issued by Google, within its iat and exp (a minute
// of skew), for one of the --audience values if any are given, with an
// email claim matching one of the --email-regex patterns (at least one is
// required, as there). --certs-url replaces Google's key URL (a mirror, or
// a test).
func newGoogleInfo(ctx context.Context, params []string, log *slog.Logger) (func(ctx context.Context, token string) error, error) {
	var (
		timeout, refresh int
		audience, emails stringList
		certsURL         string
	)
	err := parseParams(GoogleIDInfo, params, func(fs *flag.FlagSet) {
		fs.IntVar(&timeout, "timeout", 10, "Request timeout in seconds")
		fs.IntVar(&refresh, "certs-refresh-interval", 60*60, "Certificates refresh interval in seconds")
		fs.Var(&audience, "audience", "The audience of a token")
		fs.Var(&emails, "email-regex", "Regex of the email claim")
		fs.StringVar(&certsURL, "certs-url", GoogleCertsURL, "Where the signing keys are published (JWKS)")
	})
	if err != nil {
		return nil, err
	}
	if len(emails) == 0 {
		return nil, errors.New("--email-regex is required")
	}
	var patterns []*regexp.Regexp
	for _, e := range emails {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("--email-regex %q: %w", e, err)
		}
		patterns = append(patterns, re)
	}
	if timeout <= 0 || refresh <= 0 {
		return nil, errors.New("--timeout and --certs-refresh-interval must be positive")
	}
	fetchCtx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
	defer cancel()
	keys, err := jwt.OpenURL(fetchCtx, certsURL, "", time.Duration(refresh)*time.Second, log)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	audiences := map[string]bool{}
	for _, a := range audience {
		audiences[a] = true
	}
	v := jwt.New(jwt.Config{PrincipalClaim: "email", ClockSkew: time.Minute, Check: func(claims map[string]any) error {
		if iss, _ := claims["iss"].(string); !googleIssuers[iss] {
			return fmt.Errorf("issuer %q is not Google", iss)
		}
		if _, ok := claims["iat"].(float64); !ok {
			return errors.New("no iat claim")
		}
		if len(audiences) > 0 {
			if aud, _ := claims["aud"].(string); !audiences[aud] {
				return fmt.Errorf("audience %q is not one of --audience", aud)
			}
		}
		email, _ := claims["email"].(string)
		for _, re := range patterns {
			if re.MatchString(email) {
				return nil
			}
		}
		return fmt.Errorf("email %q matches no --email-regex", email)
	}}, keys, log)
	return func(ctx context.Context, token string) error {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		defer cancel()
		_, _, err := v.VerifyToken(ctx, token)
		return err
	}, nil
}
