package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// tokenSource yields OAUTHBEARER tokens. Sources cache: a token is reused
// until 80% of its lifetime has passed, so dialling many connections does
// not run a command or sign a request each time, while re-authentication
// (at 85–95% of a session that ends no later than the token) always gets
// a fresher token.
type tokenSource interface {
	Token(ctx context.Context) (string, error)
}

// unknownExpiryTTL is how long a token without a known expiry is reused.
const unknownExpiryTTL = time.Minute

type cachedToken struct {
	token   string
	fetched time.Time
	expiry  time.Time // zero if unknown
}

func (c cachedToken) fresh(now time.Time) bool {
	if c.token == "" {
		return false
	}
	if c.expiry.IsZero() {
		return now.Sub(c.fetched) < unknownExpiryTTL
	}
	return now.Before(c.fetched.Add(c.expiry.Sub(c.fetched) * 8 / 10))
}

// fileToken re-reads the file whenever its modification time or size
// changes (e.g. a sidecar writing a refreshed token).
type fileToken struct {
	path string
	mu   sync.Mutex
	st   os.FileInfo
	tok  string
}

func (f *fileToken) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("oauth token file: %w", err)
	}
	if f.tok != "" && tlsconf.Unchanged(f.st, st) {
		return f.tok, nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return "", fmt.Errorf("oauth token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("oauth token file %s is empty", f.path)
	}
	f.tok, f.st = tok, st
	return tok, nil
}

// commandToken runs a shell command that prints a token.
type commandToken struct {
	command string
	timeout time.Duration
	now     func() time.Time
	mu      sync.Mutex
	cache   cachedToken
}

func (c *commandToken) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.cache.fresh(now) {
		return c.cache.token, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.command)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		// stderr is shown (first line, bounded) because it is what tells
		// the operator why; stdout is never shown, it may hold a token.
		msg := firstLine(stderr.String(), 200)
		if ctx.Err() != nil {
			return "", fmt.Errorf("oauth token command timed out after %v", c.timeout)
		}
		if msg != "" {
			return "", fmt.Errorf("oauth token command failed: %v: %s", err, msg)
		}
		return "", fmt.Errorf("oauth token command failed: %v", err)
	}
	tok, expiry, err := parseTokenOutput(stdout.String(), now)
	if err != nil {
		return "", fmt.Errorf("oauth token command output: %w", err)
	}
	c.cache = cachedToken{token: tok, fetched: now, expiry: expiry}
	return tok, nil
}

func firstLine(s string, limit int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}

// parseTokenOutput accepts either
//
//	<token>\n[<expiry: RFC 3339 or Unix seconds>]\n
//
// or a JSON object {"token"|"access_token": ..., "expires_at": RFC 3339
// or Unix seconds, "expires_in": seconds}. Without an explicit expiry, a
// JWT's exp claim is used. Errors never include the output.
func parseTokenOutput(out string, now time.Time) (string, time.Time, error) {
	out = strings.TrimSpace(out)
	if out == "" {
		return "", time.Time{}, errors.New("empty (want a token on the first line)")
	}
	var tok string
	var expiry time.Time
	if strings.HasPrefix(out, "{") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(out), &obj); err != nil {
			return "", time.Time{}, errors.New("starts with '{' but is not a JSON object")
		}
		for _, k := range []string{"token", "access_token"} {
			if s, ok := obj[k].(string); ok && s != "" {
				tok = s
				break
			}
		}
		if tok == "" {
			return "", time.Time{}, errors.New(`JSON object has no "token" or "access_token" string`)
		}
		switch v := obj["expires_at"].(type) {
		case string:
			t, err := parseExpiry(v)
			if err != nil {
				return "", time.Time{}, fmt.Errorf("expires_at: %w", err)
			}
			expiry = t
		case float64:
			expiry = time.Unix(int64(v), 0)
		}
		if v, ok := obj["expires_in"].(float64); ok && expiry.IsZero() {
			expiry = now.Add(time.Duration(v * float64(time.Second)))
		}
	} else {
		lines := strings.Split(out, "\n")
		tok = strings.TrimSpace(lines[0])
		if len(lines) > 1 {
			t, err := parseExpiry(strings.TrimSpace(lines[1]))
			if err != nil {
				return "", time.Time{}, fmt.Errorf("line 2 (expiry): %w", err)
			}
			expiry = t
		}
		if len(lines) > 2 {
			return "", time.Time{}, fmt.Errorf("%d lines; want a token and an optional expiry", len(lines))
		}
	}
	if strings.ContainsAny(tok, " \t\x01") {
		return "", time.Time{}, errors.New("token contains whitespace or control characters")
	}
	if expiry.IsZero() {
		expiry = jwtExpiry(tok)
	}
	return tok, expiry, nil
}

func parseExpiry(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > 1e12 { // milliseconds
			return time.UnixMilli(n), nil
		}
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor Unix seconds", s)
	}
	return t, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it (only to
// schedule refreshes), or returns zero.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(claims.Exp), 0)
}
