package idtoken

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
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
	o := &oidcSource{client: httpClient(),
		creds: &credentialsFile[oidcCredentials]{component: OIDCProvider, path: file, watch: watch, check: checkOIDCCredentials, log: log}}
	if _, err := o.creds.get(); err != nil {
		return nil, err
	}
	return &cachingProvider{name: OIDCProvider, timeout: time.Duration(timeout) * time.Second, fetch: o.fetch, now: time.Now, log: log}, nil
}

type oidcSource struct {
	creds  *credentialsFile[oidcCredentials]
	client *http.Client

	mu sync.Mutex
	// inBody: the endpoint refused HTTP Basic client authentication and
	// took the client in the form instead (RFC 6749 2.3.1 allows both).
	inBody bool
}

// checkOIDCCredentials requires a client and a token endpoint the proxy
// may send it to, and a user for the password grant.
func checkOIDCCredentials(c *oidcCredentials) error {
	if c.TokenURL == "" || c.ClientID == "" {
		return errors.New("token_url and client_id are required")
	}
	if err := checkEndpoint(c.TokenURL); err != nil {
		return fmt.Errorf("token_url %w", err)
	}
	if c.GrantType == "password" && c.Username == "" {
		return errors.New("the password grant needs username and password")
	}
	return nil
}

func (o *oidcSource) fetch(ctx context.Context) (string, error) {
	c, err := o.creds.get()
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
