package idtoken

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// oidcCredentials is oidc-provider's credentials file: an OAuth 2.0
// client, with a user for the password grant.
type oidcCredentials struct {
	GrantType    string   `json:"grant_type"` // "password", else client credentials
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	TokenURL     string   `json:"token_url"`
	Scopes       []string `json:"scopes"`
	Username     string   `json:"username"`
	Password     string   `json:"password"`
}

// newOIDCProvider is oidc-provider: the access token (a JWT) of a client
// credentials or password grant at the token_url of --credentials-file.
// --target-audience is accepted and, as there, not sent.
func newOIDCProvider(params []string, log *slog.Logger) (*cachingProvider, error) {
	var (
		timeout        int
		watch          bool
		file, audience string
	)
	err := parseParams(OIDCProvider, params, func(fs *flag.FlagSet) {
		fs.IntVar(&timeout, "timeout", 10, "Request timeout in seconds")
		fs.StringVar(&file, "credentials-file", "", "Location of the JSON file with the application credentials")
		fs.BoolVar(&watch, "credentials-watch", true, "Watch credential for reload")
		fs.StringVar(&audience, "target-audience", "", "URI of audience claim")
	})
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("--timeout %d must be positive", timeout)
	}
	if file == "" {
		return nil, errors.New("--credentials-file is required")
	}
	o := &oidcSource{file: file, watch: watch, client: httpClient(), log: log}
	if _, err := o.credentials(); err != nil {
		return nil, err
	}
	return &cachingProvider{name: OIDCProvider, timeout: time.Duration(timeout) * time.Second, fetch: o.fetch, now: time.Now, log: log}, nil
}

type oidcSource struct {
	file   string
	watch  bool
	client *http.Client
	log    *slog.Logger

	mu    sync.Mutex
	stamp os.FileInfo
	creds *oidcCredentials
	// inBody: the endpoint refused HTTP Basic client authentication and
	// took the client in the form instead (RFC 6749 2.3.1 allows both).
	inBody bool
}

// credentials reads the file, again when it changed (--credentials-watch);
// a changed file that cannot be used keeps the previous credentials.
func (o *oidcSource) credentials() (oidcCredentials, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.creds != nil && !o.watch {
		return *o.creds, nil
	}
	st, err := os.Stat(o.file)
	if err == nil && o.creds != nil && tlsconf.Unchanged(o.stamp, st) {
		return *o.creds, nil
	}
	c, err := readOIDCCredentials(o.file)
	if err != nil {
		if o.creds != nil {
			o.log.Error("credentials file not reloaded: the previous credentials stay", "component", OIDCProvider, "file", o.file, "err", err)
			return *o.creds, nil
		}
		return oidcCredentials{}, err
	}
	if o.creds != nil {
		o.log.Info("credentials file reloaded", "component", OIDCProvider, "file", o.file)
	}
	o.creds, o.stamp = &c, st
	return c, nil
}

func readOIDCCredentials(file string) (oidcCredentials, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return oidcCredentials{}, fmt.Errorf("credentials file: %w", err)
	}
	var c oidcCredentials
	if err := json.Unmarshal(data, &c); err != nil {
		return oidcCredentials{}, fmt.Errorf("credentials file %s: %w", file, err)
	}
	if c.TokenURL == "" || c.ClientID == "" {
		return oidcCredentials{}, fmt.Errorf("credentials file %s: token_url and client_id are required", file)
	}
	if err := checkEndpoint(c.TokenURL); err != nil {
		return oidcCredentials{}, fmt.Errorf("credentials file %s: token_url %w", file, err)
	}
	if c.GrantType == "password" && c.Username == "" {
		return oidcCredentials{}, fmt.Errorf("credentials file %s: the password grant needs username and password", file)
	}
	return c, nil
}

func (o *oidcSource) fetch(ctx context.Context) (string, error) {
	c, err := o.credentials()
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.GrantType == "password" {
		form = url.Values{"grant_type": {"password"}, "username": {c.Username}, "password": {c.Password}}
	}
	if len(c.Scopes) > 0 {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	var answer struct {
		AccessToken string `json:"access_token"`
	}
	o.mu.Lock()
	inBody := o.inBody
	o.mu.Unlock()
	if !inBody {
		err = postForm(ctx, o.client, c.TokenURL, form, &[2]string{c.ClientID, c.ClientSecret}, &answer)
		var refused *endpointError
		if !errors.As(err, &refused) || refused.status != http.StatusBadRequest && refused.status != http.StatusUnauthorized {
			return accessToken(answer.AccessToken, err)
		}
	}
	withClient := url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
	for k, v := range form {
		withClient[k] = v
	}
	err = postForm(ctx, o.client, c.TokenURL, withClient, nil, &answer)
	if err == nil && !inBody {
		o.mu.Lock()
		o.inBody = true
		o.mu.Unlock()
	}
	return accessToken(answer.AccessToken, err)
}

func accessToken(tok string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if tok == "" {
		return "", errors.New("the token endpoint answered no access_token")
	}
	return tok, nil
}
