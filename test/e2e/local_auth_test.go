package e2e

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

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

// TestLocalAuth: every client authenticates to the proxy (--auth-local-*)
// with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, then produces and consumes
// (kafka-python speaks SaslHandshake v0 and raw tokens, the others v1 with
// SaslAuthenticate); with a wrong password each fails with an
// authentication error. The users file is written by the binary's own
// `users add`, as an operator would.
func TestLocalAuth(t *testing.T) {
	s := suiteFor(t)
	usersFile := filepath.Join(s.tmp, "local-auth-users.yaml")
	if r := s.run(clientCtx(t), "alice-secret\n", s.bin, "users", "add", "--file", usersFile, "--user", "alice"); r.err != nil {
		t.Fatalf("users add: %s", r)
	}
	tg, err := s.startTarget("plaintext", 0, 0, "--auth-local-enable", "--auth-local-mechanism", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"--auth-local-users-file", usersFile, "--log-level", "debug")
	if err != nil {
		t.Fatalf("start demo with local SASL: %v", err)
	}
	defer func() {
		if err := tg.demo.stop(); err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", tg.demo.out.String())
		}
	}()
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		for _, c := range secureClients {
			t.Run(mech+"/"+c.name, func(t *testing.T) {
				tg.sasl = &clientSASL{mech, "alice", "alice-secret"}
				tg.suffix = "-" + strings.ToLower(mech)
				c.run(t, s, tg)
			})
			t.Run(mech+"/"+c.name+"/wrong-password", func(t *testing.T) {
				tg.sasl = &clientSASL{mech, "alice", "wrong-password"}
				tg.suffix = "-" + strings.ToLower(mech) + "-refused"
				wrongPassword(t, s, tg, c.name)
			})
		}
	}
	log := tg.demo.out.String()
	if strings.Contains(log, "alice-secret") || strings.Contains(log, "wrong-password") {
		t.Error("a password reached the proxy's log")
	}
	if n := strings.Count(log, "client authentication failed"); n < 12 {
		t.Errorf("%d failed authentications logged, want one per client and mechanism (12)", n)
	}
}

// wrongPassword runs one client with tg.sasl's (wrong) credentials: it must
// report an authentication error, and deliver nothing.
func wrongPassword(t *testing.T, s *suite, tg *target, client string) {
	ctx := clientCtx(t)
	topic := "e2e-refused" + tg.suffix
	if client == "kcat" {
		r := s.run(ctx, "", append([]string{lookKcat(t), "-L", "-b", tg.bootstrap, "-m", "3"}, tg.kcatArgs()...)...)
		// PLAIN and SCRAM failures carry Kafka's message ("Authentication
		// failed ..."); an OAUTHBEARER one the RFC 7628 error JSON.
		if r.err == nil || !(strings.Contains(r.stderr, "Authentication failed") || strings.Contains(r.stderr, `SASL authentication error: {"status":"invalid_token"}`)) {
			t.Fatalf("kcat -L with a wrong password: want a failure naming the authentication:\n%s", r)
		}
		return
	}
	name := map[string]string{"confluent-kafka-python": "confluent", "kafka-python": "kafkapython", "kafkajs": "kafkajs"}[client]
	argv := append(clientProgram(t, s, name), tg.bootstrap, topic)
	start := time.Now()
	r := s.run(ctx, "", tg.withEnv(argv, "KAFKA_EXPECT_AUTH_FAILURE=1")...)
	if r.err != nil || !strings.Contains(r.stdout, ": OK authentication refused") {
		t.Fatalf("%s with a wrong password (%s):\n%s", client, time.Since(start).Round(time.Millisecond), r)
	}
}

// TestLocalAuthOAuthBearer: the clients that can be handed a token
// (confluent-kafka-python's oauth_cb, kafka-python's token provider over
// SaslHandshake v0, kafkajs's oauthBearerProvider) authenticate with a
// signed JWT checked against a JWKS file, then produce and consume; a
// token signed by another key is refused, and so is kcat's unsecured JWT
// (alg "none", the only token librdkafka makes by itself).
func TestLocalAuthOAuthBearer(t *testing.T) {
	s := suiteFor(t)
	idp, other := newSigner(t), newSigner(t)
	jwks := filepath.Join(s.tmp, "local-auth-jwks.json")
	if err := os.WriteFile(jwks, idp.jwks(t), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err := s.startTarget("plaintext", 0, 0, "--auth-local-enable", "--auth-local-mechanism", "OAUTHBEARER",
		"--auth-local-jwks-file", jwks, "--auth-local-jwt-audience", "kafka", "--log-level", "debug")
	if err != nil {
		t.Fatalf("start demo with local OAUTHBEARER: %v", err)
	}
	defer func() {
		if err := tg.demo.stop(); err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", tg.demo.out.String())
		}
	}()
	good, forged := idp.token(t, "svc-orders", "kafka"), other.token(t, "svc-orders", "kafka")
	for _, c := range secureClients {
		if c.name != "kcat" {
			t.Run(c.name, func(t *testing.T) {
				tg.sasl = &clientSASL{"OAUTHBEARER", "", good}
				tg.suffix = "-oauthbearer"
				c.run(t, s, tg)
			})
		}
		t.Run(c.name+"/refused-token", func(t *testing.T) {
			tg.sasl = &clientSASL{"OAUTHBEARER", "svc-orders", forged}
			tg.suffix = "-oauthbearer-refused"
			wrongPassword(t, s, tg, c.name)
		})
	}
	log := tg.demo.out.String()
	for _, tok := range []string{good, forged} {
		if strings.Contains(log, tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Error("a token reached the proxy's log")
		}
	}
	// One refusal per client, each with its reason (kcat's librdkafka
	// retries, so at least four).
	if n := strings.Count(log, "client authentication failed: sasl OAUTHBEARER"); n < 4 {
		t.Errorf("%d refused tokens logged, want one per client (4)", n)
	}
	if !strings.Contains(log, "signature not verified") || !strings.Contains(log, `unexpected signature algorithm \"none\"`) {
		t.Error("the reasons (bad signature, alg none) are not logged")
	}
	if !strings.Contains(log, "User:svc-orders") {
		t.Error("the token's subject is not logged as the principal")
	}
}

// signer is an identity provider's ES256 key.
type signer struct{ key *ecdsa.PrivateKey }

func newSigner(t *testing.T) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{k}
}

func (s signer) jwks(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s signer) token(t *testing.T, sub, aud string) string {
	t.Helper()
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "idp-1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := josejwt.Signed(sg).Claims(map[string]any{"sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLocalAuthOverTLS: SASL_SSL. Every client verifies the proxy's
// certificate (issued for the listener's address by a test CA), then
// authenticates with SCRAM-SHA-512 and runs its flow; a wrong password is
// refused over TLS too.
func TestLocalAuthOverTLS(t *testing.T) {
	s := suiteFor(t)
	root, err := certs.NewRoot("kafka-proxy e2e CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root.IssueServer("kafka-proxy", []string{s.listenIP}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := srv.WriteFiles(s.tmp, "local-auth-tls", certs.PKCS8, nil)
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := root.WriteCert(s.tmp, "local-auth-tls-ca", false)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(s.tmp, "local-auth-tls-users.yaml")
	if r := s.run(clientCtx(t), "alice-secret\n", s.bin, "users", "add", "--file", usersFile, "--user", "alice"); r.err != nil {
		t.Fatalf("users add: %s", r)
	}
	tg, err := s.startTarget("plaintext", 0, 0, "--proxy-listener-tls-enable",
		"--proxy-listener-cert-file", files.Cert, "--proxy-listener-key-file", files.Key,
		"--auth-local-enable", "--auth-local-mechanism", "SCRAM-SHA-512", "--auth-local-users-file", usersFile)
	if err != nil {
		t.Fatalf("start demo with a TLS listener and local SASL: %v", err)
	}
	defer func() {
		if err := tg.demo.stop(); err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", tg.demo.out.String())
		}
	}()
	tg.caFile = caFile
	for _, c := range secureClients {
		t.Run(c.name, func(t *testing.T) {
			tg.sasl = &clientSASL{"SCRAM-SHA-512", "alice", "alice-secret"}
			tg.suffix = "-sasl-ssl"
			c.run(t, s, tg)
		})
		t.Run(c.name+"/wrong-password", func(t *testing.T) {
			tg.sasl = &clientSASL{"SCRAM-SHA-512", "alice", "wrong-password"}
			tg.suffix = "-sasl-ssl-refused"
			wrongPassword(t, s, tg, c.name)
		})
	}
}
