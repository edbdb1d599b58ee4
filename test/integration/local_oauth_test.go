package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: i.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "idp-1"))
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
