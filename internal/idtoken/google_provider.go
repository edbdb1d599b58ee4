package idtoken

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// googleTokenURI is Google's OAuth 2.0 token endpoint, used when a
// credentials file names none.
const googleTokenURI = "https://oauth2.googleapis.com/token"

// googleCredentials is a Google credentials JSON file: a service account
// key, or a user's application default credentials (gcloud auth
// application-default login).
type googleCredentials struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RefreshToken string `json:"refresh_token"`
}

// newGoogleProvider is google-id-provider: Google ID tokens for
// --target-audience, from a service account key (--credentials-file) or,
// with --adc, from Application Default Credentials (the file
// GOOGLE_APPLICATION_CREDENTIALS names, else gcloud's user credentials,
// else the metadata server of the machine it runs on).
func newGoogleProvider(params []string, log *slog.Logger) (*cachingProvider, error) {
	var (
		timeout        int
		adc, watch     bool
		file, audience string
	)
	err := parseParams(GoogleIDProvider, params, func(fs *flag.FlagSet) {
		fs.IntVar(&timeout, "timeout", 10, "Request timeout in seconds")
		fs.BoolVar(&adc, "adc", false, "Use Google Application Default Credentials instead of ServiceAccount JSON")
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
	if !adc && file == "" {
		return nil, errors.New("--credentials-file is required (or --adc)")
	}
	if adc {
		file = defaultCredentialsFile()
	}
	g := &googleSource{audience: audience, client: httpClient()}
	serviceAccount := true // the metadata server's identity is one
	if file != "" {
		g.creds = &credentialsFile[googleCredentials]{component: GoogleIDProvider, path: file, watch: watch, check: checkGoogleCredentials, log: log}
		c, err := g.creds.get()
		if err != nil {
			return nil, err
		}
		serviceAccount = c.Type == "service_account"
	}
	if audience == "" && serviceAccount {
		return nil, errors.New("--target-audience is required for a service account")
	}
	return &cachingProvider{name: GoogleIDProvider, timeout: time.Duration(timeout) * time.Second, fetch: g.fetch, now: time.Now, log: log}, nil
}

// defaultCredentialsFile is where Application Default Credentials are
// looked for; "" means the metadata server.
func defaultCredentialsFile() string {
	if f := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS"); f != "" {
		return f
	}
	if home, err := os.UserHomeDir(); err == nil {
		f := filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}

// googleSource fetches Google ID tokens.
type googleSource struct {
	creds    *credentialsFile[googleCredentials] // nil for the metadata server
	audience string
	client   *http.Client
}

// checkGoogleCredentials accepts a service account key or a user's
// credentials, with a token endpoint the proxy may send them to.
func checkGoogleCredentials(c *googleCredentials) error {
	if c.TokenURI == "" {
		c.TokenURI = googleTokenURI
	}
	if err := checkEndpoint(c.TokenURI); err != nil {
		return fmt.Errorf("token_uri %w", err)
	}
	switch c.Type {
	case "service_account":
		if c.ClientEmail == "" || c.PrivateKey == "" {
			return errors.New("a service account key needs client_email and private_key")
		}
		if _, err := tlsconf.ParsePrivateKeyPEM([]byte(c.PrivateKey), nil); err != nil {
			return fmt.Errorf("private_key: %w", err)
		}
	case "authorized_user":
		if c.ClientID == "" || c.ClientSecret == "" || c.RefreshToken == "" {
			return errors.New("user credentials need client_id, client_secret and refresh_token")
		}
	default:
		return fmt.Errorf("type %q is not service_account or authorized_user", c.Type)
	}
	return nil
}

func (g *googleSource) fetch(ctx context.Context) (string, error) {
	if g.creds == nil {
		return g.fromMetadataServer(ctx)
	}
	c, err := g.creds.get()
	if err != nil {
		return "", err
	}
	var answer struct {
		IDToken string `json:"id_token"`
	}
	if c.Type == "authorized_user" {
		// A refresh-token grant answers an ID token for the user next to
		// the access token (its audience is the OAuth client).
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
		err = postForm(ctx, g.client, c.TokenURI, form, nil, &answer)
	} else {
		var assertion string
		if assertion, err = serviceAccountAssertion(c, g.audience, time.Now()); err != nil {
			return "", err
		}
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
		err = postForm(ctx, g.client, c.TokenURI, form, nil, &answer)
	}
	if err != nil {
		return "", err
	}
	if answer.IDToken == "" {
		return "", errors.New("the token endpoint answered no id_token")
	}
	return answer.IDToken, nil
}

// serviceAccountAssertion is the signed JWT a service account exchanges
// for an ID token (RFC 7523): issued by its e-mail, for the token
// endpoint, asking for target_audience, valid one hour.
func serviceAccountAssertion(c googleCredentials, audience string, now time.Time) (string, error) {
	key, err := tlsconf.ParsePrivateKeyPEM([]byte(c.PrivateKey), nil)
	if err != nil {
		return "", fmt.Errorf("private_key: %w", err)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if c.PrivateKeyID != "" {
		opts = opts.WithHeader("kid", c.PrivateKeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("private_key: %w", err)
	}
	claims := josejwt.Claims{Issuer: c.ClientEmail, Audience: josejwt.Audience{c.TokenURI},
		IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Hour))}
	return josejwt.Signed(signer).Claims(claims).Claims(map[string]any{"target_audience": audience}).Serialize()
}

// fromMetadataServer asks the metadata server of the Google Cloud machine
// for an ID token of its service account (GCE_METADATA_HOST overrides its
// address, as in Google's libraries).
func (g *googleSource) fromMetadataServer(ctx context.Context) (string, error) {
	host := os.Getenv("GCE_METADATA_HOST")
	if host == "" {
		host = "metadata.google.internal"
	}
	u := "http://" + host + "/computeMetadata/v1/instance/service-accounts/default/identity?format=full&audience=" + url.QueryEscape(g.audience)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := g.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("no credentials file for --adc and the metadata server cannot be reached: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metadata server answered %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(body)), nil
}
