package jwt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// Bounds on a key set.
const (
	MaxKeySetSize = 1 << 20 // bytes of JSON
	MaxKeys       = 100
	// minRefetch rate-limits refreshes for unknown key ids, so tokens with
	// made-up kids cannot make the proxy hammer the identity provider.
	minRefetch   = 10 * time.Second
	fetchTimeout = 10 * time.Second
)

// ParseKeySet decodes a JWKS document, refusing one without usable keys.
func ParseKeySet(data []byte) (*jose.JSONWebKeySet, error) {
	if len(data) > MaxKeySetSize {
		return nil, fmt.Errorf("jwks of %d bytes, limit %d", len(data), MaxKeySetSize)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if len(set.Keys) > MaxKeys {
		return nil, fmt.Errorf("jwks holds %d keys, limit %d", len(set.Keys), MaxKeys)
	}
	usable := 0
	for _, k := range set.Keys {
		if k.IsPublic() && k.Valid() {
			usable++
		}
	}
	if usable == 0 {
		return nil, errors.New("jwks holds no public key")
	}
	return &set, nil
}

// FileKeys is a key set read from a file, re-read when the file changes
// (looked at no more than once per interval).
type FileKeys struct {
	path  string
	every time.Duration
	log   *slog.Logger

	mu    sync.Mutex
	set   *jose.JSONWebKeySet
	stamp os.FileInfo
	last  time.Time
}

// OpenFile loads path now; a missing or bad file is an error at start.
func OpenFile(path string, every time.Duration, log *slog.Logger) (*FileKeys, error) {
	if every <= 0 {
		every = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FileKeys{path: path, every: every, log: log}
	set, st, err := f.read()
	if err != nil {
		return nil, err
	}
	f.set, f.stamp, f.last = set, st, time.Now()
	return f, nil
}

func (f *FileKeys) read() (*jose.JSONWebKeySet, os.FileInfo, error) {
	st, err := os.Stat(f.path)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks file: %w", err)
	}
	if st.Size() > MaxKeySetSize {
		return nil, nil, fmt.Errorf("jwks file %s: %d bytes, limit %d", f.path, st.Size(), MaxKeySetSize)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks file: %w", err)
	}
	set, err := ParseKeySet(data)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks file %s: %w", f.path, err)
	}
	return set, st, nil
}

// Current returns the keys, re-reading the file if it changed.
func (f *FileKeys) Current(context.Context) (*jose.JSONWebKeySet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.last) >= f.every {
		f.last = time.Now()
		f.reloadLocked(false)
	}
	return f.set, nil
}

// Refresh re-reads the file if it changed since it was last read.
func (f *FileKeys) Refresh(context.Context) (*jose.JSONWebKeySet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloadLocked(true)
	return f.set, nil
}

func (f *FileKeys) reloadLocked(force bool) {
	st, err := os.Stat(f.path)
	if err == nil && !force && tlsconf.Unchanged(f.stamp, st) {
		return
	}
	set, st, err := f.read()
	if err != nil {
		f.log.Error("jwks file not reloaded: the keys loaded before stay in force", "err", err)
		return
	}
	f.set, f.stamp = set, st
}

// URLKeys is a key set fetched over HTTPS (plain HTTP only from a
// loopback address), cached, fetched again after the refresh interval
// and, at most every 10 s, for a key id it does not know.
type URLKeys struct {
	url    string
	every  time.Duration
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time
	tried   time.Time
}

// OpenURL fetches the key set now: an identity provider that cannot be
// reached at start is an error, so a typo shows at once. caFile, if set,
// replaces the system roots.
func OpenURL(ctx context.Context, rawURL, caFile string, every time.Duration, log *slog.Logger) (*URLKeys, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, err
	}
	if every <= 0 {
		every = time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("jwks ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("jwks ca file %s: no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	u := &URLKeys{url: rawURL, every: every, client: &http.Client{Transport: tr, Timeout: fetchTimeout}, log: log}
	set, err := u.fetch(ctx)
	if err != nil {
		return nil, err
	}
	u.set, u.fetched, u.tried = set, time.Now(), time.Now()
	return u, nil
}

// CheckURL accepts https URLs, and http ones to a loopback address.
func CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("jwks url: %w", err)
	}
	if SecureURL(u) {
		return nil
	}
	if u.Scheme == "http" {
		return fmt.Errorf("jwks url %s: http only to a loopback address; keys fetched in the clear could be forged", rawURL)
	}
	return fmt.Errorf("jwks url %q: want https://", rawURL)
}

// SecureURL reports whether u is https, or http to a loopback address (a
// local service): what the proxy fetches keys and tokens from.
func SecureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		ip := net.ParseIP(u.Hostname())
		return ip != nil && ip.IsLoopback() || u.Hostname() == "localhost"
	}
	return false
}

func (u *URLKeys) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", u.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: HTTP %s", u.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxKeySetSize+1))
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", u.url, err)
	}
	set, err := ParseKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", u.url, err)
	}
	return set, nil
}

// Current returns the cached keys, fetching them again once the refresh
// interval passed (a failed fetch keeps the cached keys).
func (u *URLKeys) Current(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if time.Since(u.fetched) >= u.every && time.Since(u.tried) >= minRefetch {
		u.refetchLocked(ctx)
	}
	return u.set, nil
}

// Refresh fetches the keys again unless that was tried in the last 10 s.
func (u *URLKeys) Refresh(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if time.Since(u.tried) >= minRefetch {
		u.refetchLocked(ctx)
	}
	return u.set, nil
}

func (u *URLKeys) refetchLocked(ctx context.Context) {
	u.tried = time.Now()
	set, err := u.fetch(ctx)
	if err != nil {
		u.log.Error("jwks not refreshed: the keys fetched before stay in force", "err", err)
		return
	}
	u.set, u.fetched = set, time.Now()
}
