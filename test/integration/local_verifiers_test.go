package integration

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin/plugintest"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/ldaptest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// checkPlainClients: franz-go, sarama (handshake v0 and v1) and kafka-go
// authenticate with PLAIN as user, produce and consume; with a wrong
// password each fails with an authentication error and nothing reaches a
// broker.
func checkPlainClients(t *testing.T, c *memkafka.Cluster, p *kafkatest.Proxy, prefix, user, password string) {
	t.Helper()
	ctx := ctxT(t, 90*time.Second)
	t.Run("franz-go", func(t *testing.T) {
		topic := prefix + "-franz"
		cl := franzClient(t, p, kgo.SASL(franzMechanism(config.LocalPlain, user, password)), kgo.DefaultProduceTopic(topic),
			kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
		want := keyedValues(30)
		produceAll(ctx, t, cl, want)
		consumeInto(ctx, t, cl, len(want)).check(t, want, false)
		cl.Close()
		before := brokerRequests(c)
		bad := franzClient(t, p, kgo.SASL(franzMechanism(config.LocalPlain, user, password+"x")), kgo.RetryTimeout(time.Second))
		if err := bad.Ping(ctx); !isAuthFailure(err) {
			t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		if n := before.Load(); n != 0 {
			t.Errorf("a client with a wrong password got %d requests to the brokers", n)
		}
	})
	for _, handshake := range []int16{sarama.SASLHandshakeV1, sarama.SASLHandshakeV0} {
		t.Run(fmt.Sprintf("sarama/handshake-v%d", handshake), func(t *testing.T) {
			topic := fmt.Sprintf("%s-sarama-v%d", prefix, handshake)
			prod, err := sarama.NewSyncProducer([]string{p.Bootstrap}, saramaSASL(p, config.LocalPlain, handshake, user, password))
			if err != nil {
				t.Fatalf("producer: %v", err)
			}
			defer prod.Close()
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("v")}); err != nil {
				t.Fatalf("produce: %v", err)
			}
			if cl, err := sarama.NewClient([]string{p.Bootstrap}, saramaSASL(p, config.LocalPlain, handshake, user, password+"x")); err == nil {
				cl.Close()
				t.Fatal("wrong password: client connected")
			}
		})
	}
	t.Run("kafka-go", func(t *testing.T) {
		good := &kafkago.Client{Addr: kafkago.TCP(p.Bootstrap), Transport: &kafkago.Transport{Dial: p.DialContext, SASL: kafkaGoMechanism(t, config.LocalPlain, user, password)}}
		if _, err := good.Metadata(ctx, &kafkago.MetadataRequest{}); err != nil {
			t.Fatalf("metadata: %v", err)
		}
		bad := &kafkago.Client{Addr: kafkago.TCP(p.Bootstrap), Transport: &kafkago.Transport{Dial: p.DialContext, SASL: kafkaGoMechanism(t, config.LocalPlain, user, password+"x")}}
		if _, err := bad.Metadata(ctx, &kafkago.MetadataRequest{}); !errors.Is(err, kafkago.SASLAuthenticationFailed) {
			t.Errorf("wrong password: %v, want %v", err, kafkago.SASLAuthenticationFailed)
		}
	})
	if strings.Contains(p.Logs.String(), password) {
		t.Errorf("a password reached the log")
	}
}

// TestLocalAuthLDAP: PLAIN checked against a real OpenLDAP, over StartTLS,
// by a DN built from the name and by a search; a directory that is gone
// fails authentication (as "could not be verified"), not the proxy.
func TestLocalAuthLDAP(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Person{UID: "alice", Password: "alice-ldap", Mail: "alice@example.com"})
	bindPass := filepath.Join(t.TempDir(), "bind")
	if err := os.WriteFile(bindPass, []byte(ldaptest.ReaderPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]config.LocalLDAP{
		"bind dn":   {URLs: []string{s.URL}, UserDN: ldaptest.PeopleDN, UserAttr: "uid", StartTLS: true, CAFile: s.CAFile},
		"search":    {URLs: []string{s.LDAPSURL}, UserAttr: "uid", CAFile: s.CAFile, BindDN: ldaptest.ReaderDN, BindPasswordFile: bindPass, SearchBase: ldaptest.Suffix, Filter: "(mail=%s@example.com)"},
		"fail-over": {URLs: []string{"ldap://127.0.0.1:1", s.URL}, UserDN: ldaptest.PeopleDN, UserAttr: "uid", StartTLS: true, CAFile: s.CAFile},
	} {
		t.Run(name, func(t *testing.T) {
			c, p := setup(t, func(cfg *config.Config) {
				cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalPlain}, LDAP: d, Plugin: config.LocalPlugin{Timeout: 5 * time.Second}}
			})
			checkPlainClients(t, c, p, "ldap-"+strings.ReplaceAll(name, " ", "-"), "alice", "alice-ldap")
			if !p.Logs.Contains("PLAIN passwords checked by LDAP") {
				t.Errorf("no start line naming the verifier:\n%s", p.Logs.String())
			}
		})
	}
	t.Run("directory down", func(t *testing.T) {
		down := ldaptest.Start(t, ldaptest.Person{UID: "alice", Password: "alice-ldap"})
		_, p := setup(t, func(cfg *config.Config) {
			cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalPlain}, Plugin: config.LocalPlugin{Timeout: 2 * time.Second},
				LDAP: config.LocalLDAP{URLs: []string{down.URL}, UserDN: ldaptest.PeopleDN, UserAttr: "uid"}}
		})
		down.Stop()
		ctx := ctxT(t, 30*time.Second)
		cl := franzClient(t, p, kgo.SASL(franzMechanism(config.LocalPlain, "alice", "alice-ldap")), kgo.RetryTimeout(time.Second))
		err := cl.Ping(ctx)
		if !isAuthFailure(err) || !strings.Contains(err.Error(), "could not be verified") {
			t.Fatalf("directory down: %v, want SASL_AUTHENTICATION_FAILED: ...could not be verified", err)
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	plugintest.Remove()
	os.Exit(code)
}

// TestLocalAuthPlugin: PLAIN checked by a password-authenticator plugin
// binary in both of the protocol's forms; a plugin that crashes fails
// that one authentication and is started again for the next.
func TestLocalAuthPlugin(t *testing.T) {
	bin := plugintest.Binary(t)
	for form, extra := range map[string][]string{"net-rpc": nil, "grpc": {"--grpc"}} {
		t.Run(form, func(t *testing.T) {
			c, p := setup(t, func(cfg *config.Config) {
				cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalPlain},
					Plugin: config.LocalPlugin{Command: bin, Params: append([]string{"--username", "alice", "--password", "alice-plugin"}, extra...), Timeout: 2 * time.Second, LogLevel: "info"}}
			})
			checkPlainClients(t, c, p, "plugin-"+form, "alice", "alice-plugin")
			ctx := ctxT(t, 30*time.Second)
			crash := franzClient(t, p, kgo.SASL(franzMechanism(config.LocalPlain, "crash", "x")), kgo.RetryTimeout(time.Second))
			if err := crash.Ping(ctx); !isAuthFailure(err) {
				t.Fatalf("crashing plugin: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
			time.Sleep(1100 * time.Millisecond) // restarts are at most once a second
			again := franzClient(t, p, kgo.SASL(franzMechanism(config.LocalPlain, "alice", "alice-plugin")))
			if err := again.Ping(ctx); err != nil {
				t.Fatalf("after the plugin crashed: %v", err)
			}
			if !p.Logs.Contains("plugin exited") && !p.Logs.Contains("plugin call failed") {
				t.Errorf("the crash was not logged:\n%s", p.Logs.String())
			}
		})
	}
}

// TestLocalAuthTokenPlugin: OAUTHBEARER checked by a token-info plugin;
// the token's sub is the principal.
func TestLocalAuthTokenPlugin(t *testing.T) {
	bin := plugintest.Binary(t)
	c, p := setup(t, func(cfg *config.Config) {
		cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalOAuthBearer}, JWT: config.LocalJWT{PrincipalClaim: "sub"},
			Plugin: config.LocalPlugin{Command: bin, Params: []string{"--kind", "token", "--token-signature", "trusted", "--grpc"}, Timeout: 2 * time.Second, LogLevel: "info"}}
	})
	token := func(sig string) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"svc-a","exp":%d}`, time.Now().Add(time.Hour).Unix()))) + "." + sig
	}
	ctx := ctxT(t, 60*time.Second)
	topic := "token-plugin"
	cl := franzClient(t, p, kgo.SASL(oauth.Auth{Token: token("trusted")}.AsMechanism()), kgo.DefaultProduceTopic(topic),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	want := keyedValues(20)
	produceAll(ctx, t, cl, want)
	consumeInto(ctx, t, cl, len(want)).check(t, want, false)
	cl.Close()
	before := brokerRequests(c)
	bad := franzClient(t, p, kgo.SASL(oauth.Auth{Token: token("forged")}.AsMechanism()), kgo.RetryTimeout(time.Second))
	// franz-go gives up at Kafka's error challenge, as against a broker.
	if err := bad.Ping(ctx); err == nil || !strings.Contains(err.Error(), "unexpected data in oauth response") {
		t.Fatalf("forged token: %v, want the error challenge", err)
	}
	if n := before.Load(); n != 0 {
		t.Errorf("a forged token got %d requests to the brokers", n)
	}
	if !p.Logs.WaitFor(5*time.Second, "client authentication failed", "plugin refused the token", "closed at the error challenge") {
		t.Errorf("the refusal was not logged with its reason:\n%s", p.Logs.String())
	}
}
