package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// idp signs tokens with an ES256 key published in a JWKS file.
type idp struct {
	key  *ecdsa.PrivateKey
	jwks string
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}}
	data, _ := json.Marshal(set)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return &idp{key: k, jwks: path}
}

func (i *idp) token(t *testing.T, sub, aud string, ttl time.Duration) string {
	t.Helper()
	return i.tokenWithKID(t, "idp-1", sub, aud, ttl)
}

func (i *idp) tokenWithKID(t *testing.T, kid, sub, aud string, ttl time.Duration) string {
	t.Helper()
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: i.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := josejwt.Signed(sg).Claims(map[string]any{"sub": sub, "iss": "https://idp.test", "aud": aud, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type saramaToken string

func (s saramaToken) Token() (*sarama.AccessToken, error) {
	return &sarama.AccessToken{Token: string(s)}, nil
}

// TestLocalAuthOAuthBearer: signed JWTs checked against a JWKS file, with
// issuer and audience; the session lifetime never exceeds the token's
// expiry; expired, wrong-audience and forged tokens are refused.
func TestLocalAuthOAuthBearer(t *testing.T) {
	id := newIDP(t)
	_, p := setup(t, func(cfg *config.Config) {
		cfg.Auth.Local = config.Default().Auth.Local
		cfg.Auth.Local.Enable = true
		cfg.Auth.Local.Mechanisms = []string{"OAUTHBEARER"}
		cfg.Auth.Local.SessionLifetime = time.Hour
		cfg.Auth.Local.JWT.JWKSFile = id.jwks
		cfg.Auth.Local.JWT.Issuer = "https://idp.test"
		cfg.Auth.Local.JWT.Audience = "kafka"
	})
	ctx := ctxT(t, 60*time.Second)
	tok := id.token(t, "orders", "kafka", 10*time.Minute)
	cl := franzClient(t, p, kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()), kgo.DefaultProduceTopic("local-oauth"), kgo.AllowAutoTopicCreation())
	produceAll(ctx, t, cl, keyedValues(20))

	// The announced lifetime is the token's remaining validity, not the hour.
	r := dialRaw(t, p)
	if got := r.authenticateWith("OAUTHBEARER", []byte("n,,\x01auth=Bearer "+tok+"\x01\x01"), []string{"OAUTHBEARER"}); got > 10*time.Minute || got < 9*time.Minute {
		t.Errorf("session lifetime %v, want the token's ~10m", got)
	}

	cfg := saramaConfig(p)
	cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism = true, sarama.SASLTypeOAuth
	cfg.Net.SASL.TokenProvider = saramaToken(tok)
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{p.Bootstrap}, cfg)
	if err != nil {
		t.Fatalf("sarama: %v", err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "local-oauth", Value: sarama.StringEncoder("x")}); err != nil {
		t.Errorf("sarama produce: %v", err)
	}
	prod.Close()

	// A rejected token gets Kafka's RFC 7628 error challenge; franz-go (as
	// against a broker) gives up there, a client that acknowledges it with
	// %x01 gets SASL_AUTHENTICATION_FAILED.
	forger := newIDP(t)
	for name, tc := range map[string]struct{ token, reason string }{
		"expired":        {id.token(t, "orders", "kafka", -time.Minute), "expired at"},
		"wrong audience": {id.token(t, "orders", "billing", time.Minute), "audience"},
		"forged":         {forger.token(t, "orders", "kafka", time.Minute), "signature not verified"},
	} {
		cl := franzClient(t, p, kgo.SASL(oauth.Auth{Token: tc.token}.AsMechanism()), kgo.RetryTimeout(time.Second))
		if err := cl.Ping(ctx); err == nil || !strings.Contains(err.Error(), "unexpected data in oauth response") {
			t.Errorf("%s token, franz-go: %v", name, err)
		}
		r := dialRaw(t, p)
		hs := &kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "OAUTHBEARER"}
		r.roundTrip(hs, kmsg.NewPtrSASLHandshakeResponse())
		first := kmsg.NewPtrSASLAuthenticateResponse()
		r.roundTrip(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: []byte("n,,\x01auth=Bearer " + tc.token + "\x01\x01")}, first)
		if first.ErrorCode != 0 || !strings.Contains(string(first.SASLAuthBytes), "invalid_token") {
			t.Errorf("%s token: challenge %+v", name, first)
		}
		final := kmsg.NewPtrSASLAuthenticateResponse()
		r.roundTrip(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: []byte{1}}, final)
		if final.ErrorCode != kerr.SaslAuthenticationFailed.Code || !r.closed() {
			t.Errorf("%s token: after the challenge %+v", name, final)
		}
		if !p.Logs.WaitFor(5*time.Second, "client authentication failed", tc.reason) {
			t.Errorf("%s token: no failure logged with %q", name, tc.reason)
		}
	}
	if p.Logs.Contains(tok[len(tok)-20:]) {
		t.Error("a token reached the log")
	}
}

// TestLocalAuthOAuthBearerJWKSURL: the key set comes from an identity
// provider's URL; a token signed with a key published after the proxy
// started (a new kid) is accepted after one fetch, without a restart.
// Unknown kids fetch at most every 10 s, so this takes about 10 s: the
// client retries until the fetch that follows the start's is allowed.
func TestLocalAuthOAuthBearerJWKSURL(t *testing.T) {
	first, rotated := newIDP(t), newIDP(t)
	var mu sync.Mutex
	var fetches int
	keys := []jose.JSONWebKey{{Key: &first.key.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}
	idpServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	}))
	defer idpServer.Close()
	_, p := setup(t, func(cfg *config.Config) {
		cfg.Auth.Local = config.Default().Auth.Local
		cfg.Auth.Local.Enable = true
		cfg.Auth.Local.Mechanisms = []string{"OAUTHBEARER"}
		cfg.Auth.Local.JWT.JWKSURL = idpServer.URL + "/.well-known/jwks.json"
		cfg.Auth.Local.JWT.Issuer = "https://idp.test"
		cfg.Auth.Local.JWT.Audience = "kafka"
	})
	ctx := ctxT(t, 60*time.Second)
	cl := franzClient(t, p, kgo.SASL(oauth.Auth{Token: first.token(t, "orders", "kafka", 10*time.Minute)}.AsMechanism()),
		kgo.DefaultProduceTopic("local-oauth-url"), kgo.AllowAutoTopicCreation())
	produceAll(ctx, t, cl, keyedValues(5))

	// The provider rotates: it publishes a second key and signs with it.
	mu.Lock()
	keys = append(keys, jose.JSONWebKey{Key: &rotated.key.PublicKey, KeyID: "idp-2", Algorithm: "ES256", Use: "sig"})
	before := fetches
	mu.Unlock()
	tok := rotated.tokenWithKID(t, "idp-2", "billing-svc", "kafka", 10*time.Minute)
	cl2 := franzClient(t, p, kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()), kgo.DefaultProduceTopic("local-oauth-url"))
	produceAll(ctx, t, cl2, keyedValues(5))
	mu.Lock()
	after := fetches
	mu.Unlock()
	if after != before+1 {
		t.Errorf("%d key set fetches for one unknown kid, want 1", after-before)
	}
	if !p.Logs.WaitFor(5*time.Second, "client authenticated", "principal=User:billing-svc") {
		t.Error("the rotated key's token did not authenticate as User:billing-svc")
	}
}
