// Package idptest is test-only: an identity provider on loopback that
// answers as Google's OAuth 2.0 token endpoint, key URL and metadata
// server, and as a generic OAuth 2.0 token endpoint, closely enough to
// test the built-in token components (package idtoken) end to end. It
// checks what a real endpoint checks: the grant type, the service
// account's signed assertion (signature, issuer, audience, expiry), the
// refresh token, the client's credentials (HTTP Basic or form), and the
// metadata header. It signs its tokens with a key of its own, published
// at /certs.
package idptest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is the iss of the Google ID tokens the provider signs.
const Issuer = "https://accounts.google.com"

// IDP is a running identity provider.
type IDP struct {
	URL string // http://127.0.0.1:port

	t       testing.TB
	signing *rsa.PrivateKey // signs the tokens it issues
	account *rsa.PrivateKey // the service account's key, whose public half it trusts

	mu       sync.Mutex
	requests map[string]int // path -> requests
	// BodyClientAuth makes the OAuth endpoint refuse HTTP Basic client
	// authentication and accept only client_id and client_secret in the
	// form, as some providers do.
	BodyClientAuth bool
	// TTL is the lifetime of the tokens issued (default an hour).
	TTL time.Duration
}

// Client is the OAuth client the provider knows, with its user.
const (
	ClientID     = "kafka-proxy-client"
	ClientSecret = "client-s3cret"
	RefreshToken = "refresh-t0ken"
	Username     = "alice"
	Password     = "alice-passw0rd"
	AccountEmail = "gateway@project.iam.gserviceaccount.com"
)

// Start runs the provider until the test ends.
func Start(t testing.TB) *IDP {
	t.Helper()
	i := &IDP{t: t, requests: map[string]int{}, TTL: time.Hour}
	var err error
	if i.signing, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if i.account, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", i.googleToken)
	mux.HandleFunc("POST /oauth/token", i.oauthToken)
	mux.HandleFunc("GET /certs", i.certs)
	mux.HandleFunc("GET /computeMetadata/v1/instance/service-accounts/default/identity", i.metadata)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.mu.Lock()
		i.requests[r.URL.Path]++
		i.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	i.URL = srv.URL
	return i
}

// Requests counts the requests to path so far.
func (i *IDP) Requests(path string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.requests[path]
}

// IDToken signs a Google-style ID token with the provider's key.
func (i *IDP) IDToken(claims map[string]any) string {
	return i.sign(i.signing, "idp-key", claims)
}

// GoogleToken is a Google ID token for email and audience, valid for ttl.
func (i *IDP) GoogleToken(email, audience string, ttl time.Duration) string {
	now := time.Now()
	return i.IDToken(map[string]any{"iss": Issuer, "aud": audience, "email": email, "email_verified": true,
		"sub": "1234567890", "iat": now.Unix(), "exp": now.Add(ttl).Unix()})
}

func (i *IDP) sign(key *rsa.PrivateKey, kid string, claims map[string]any) string {
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		i.t.Fatal(err)
	}
	tok, err := josejwt.Signed(sg).Claims(claims).Serialize()
	if err != nil {
		i.t.Fatal(err)
	}
	return tok
}

// ServiceAccountFile writes a service account key file whose token_uri is
// this provider.
func (i *IDP) ServiceAccountFile(dir string) string {
	der, err := x509.MarshalPKCS8PrivateKey(i.account)
	if err != nil {
		i.t.Fatal(err)
	}
	return i.writeJSON(dir, "service-account.json", map[string]string{
		"type": "service_account", "project_id": "project", "private_key_id": "sa-key-1", "client_email": AccountEmail,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": i.URL + "/token"})
}

// AuthorizedUserFile writes application default credentials of a user.
func (i *IDP) AuthorizedUserFile(dir string) string {
	return i.writeJSON(dir, "application_default_credentials.json", map[string]string{
		"type": "authorized_user", "client_id": ClientID, "client_secret": ClientSecret, "refresh_token": RefreshToken, "token_uri": i.URL + "/token"})
}

// OIDCFile writes oidc-provider's credentials file for grant
// ("client_credentials" or "password").
func (i *IDP) OIDCFile(dir, grant string) string {
	c := map[string]any{"grant_type": grant, "client_id": ClientID, "client_secret": ClientSecret, "token_url": i.URL + "/oauth/token", "scopes": []string{"kafka", "openid"}}
	if grant == "password" {
		c["username"], c["password"] = Username, Password
	}
	return i.writeJSON(dir, "oidc-"+grant+".json", c)
}

func (i *IDP) writeJSON(dir, name string, v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		i.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		i.t.Fatal(err)
	}
	return path
}

// certs publishes the signing key as a JWKS, as Google's key URL does.
func (i *IDP) certs(w http.ResponseWriter, _ *http.Request) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &i.signing.PublicKey, KeyID: "idp-key", Algorithm: "RS256", Use: "sig"}}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// googleToken answers Google's token endpoint: a service account's
// jwt-bearer assertion, or a user's refresh token, for an ID token.
func (i *IDP) googleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", err.Error())
		return
	}
	now := time.Now()
	switch r.PostForm.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		tok, err := josejwt.ParseSigned(r.PostForm.Get("assertion"), []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			oauthError(w, 400, "invalid_grant", "malformed assertion")
			return
		}
		var c josejwt.Claims
		var extra struct {
			TargetAudience string `json:"target_audience"`
		}
		if err := tok.Claims(&i.account.PublicKey, &c, &extra); err != nil {
			oauthError(w, 400, "invalid_grant", "Invalid JWT Signature.")
			return
		}
		if err := c.ValidateWithLeeway(josejwt.Expected{Issuer: AccountEmail, AnyAudience: josejwt.Audience{i.URL + "/token"}, Time: now}, time.Minute); err != nil {
			oauthError(w, 400, "invalid_grant", "Invalid JWT: "+err.Error())
			return
		}
		if tok.Headers[0].KeyID != "sa-key-1" || extra.TargetAudience == "" {
			oauthError(w, 400, "invalid_request", "no key id or target_audience")
			return
		}
		writeJSON(w, map[string]any{"id_token": i.GoogleToken(AccountEmail, extra.TargetAudience, i.TTL)})
	case "refresh_token":
		if r.PostForm.Get("client_id") != ClientID || r.PostForm.Get("client_secret") != ClientSecret {
			oauthError(w, 401, "invalid_client", "The OAuth client was not found.")
			return
		}
		if r.PostForm.Get("refresh_token") != RefreshToken {
			oauthError(w, 400, "invalid_grant", "Bad Request")
			return
		}
		writeJSON(w, map[string]any{"access_token": "ya29.opaque", "expires_in": 3599, "token_type": "Bearer",
			"id_token": i.GoogleToken("alice@example.com", ClientID, i.TTL)})
	default:
		oauthError(w, 400, "unsupported_grant_type", r.PostForm.Get("grant_type"))
	}
}

// oauthToken is a generic OAuth 2.0 endpoint: client credentials or
// password grants, the client authenticated by HTTP Basic (RFC 6749
// 2.3.1, form-encoded id and secret) or, with BodyClientAuth, in the form.
func (i *IDP) oauthToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", err.Error())
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	i.mu.Lock()
	bodyOnly := i.BodyClientAuth
	i.mu.Unlock()
	if basic && bodyOnly || id != ClientID || secret != ClientSecret {
		oauthError(w, 401, "invalid_client", "client authentication failed")
		return
	}
	sub := ClientID
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
	case "password":
		if r.PostForm.Get("username") != Username || r.PostForm.Get("password") != Password {
			oauthError(w, 400, "invalid_grant", "Invalid user credentials")
			return
		}
		sub = Username
	default:
		oauthError(w, 400, "unsupported_grant_type", r.PostForm.Get("grant_type"))
		return
	}
	now := time.Now()
	tok := i.IDToken(map[string]any{"iss": i.URL, "sub": sub, "aud": "kafka", "scope": r.PostForm.Get("scope"), "iat": now.Unix(), "exp": now.Add(i.TTL).Unix()})
	writeJSON(w, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(i.TTL.Seconds())})
}

// metadata answers the metadata server's identity endpoint.
func (i *IDP) metadata(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "Missing Metadata-Flavor:Google header", http.StatusForbidden)
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" {
		http.Error(w, "non-empty audience parameter required", http.StatusBadRequest)
		return
	}
	_, _ = w.Write([]byte(i.GoogleToken("vm@project.iam.gserviceaccount.com", aud, i.TTL)))
}

// SetBodyClientAuth switches BodyClientAuth while serving.
func (i *IDP) SetBodyClientAuth(on bool) {
	i.mu.Lock()
	i.BodyClientAuth = on
	i.mu.Unlock()
}

// Host is the provider's host:port (for GCE_METADATA_HOST).
func (i *IDP) Host() string { return strings.TrimPrefix(i.URL, "http://") }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
