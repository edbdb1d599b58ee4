package integration

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/idptest"
	"github.com/kafka-proxy/kafka-proxy/internal/idtoken"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// TestBuiltinTokenComponents: the --*-command names the proxy we replace
// builds in work without plugin binaries, against an identity provider on
// loopback. A client-side proxy with google-id-provider (a service
// account) passes a server-side proxy with google-id-info; one with
// oidc-provider passes a server-side proxy checking its access token with
// the jwt method; and --sasl-plugin-command oidc-provider authenticates
// with OAUTHBEARER to a proxy whose local SASL checks the same tokens.
// A service account the server does not admit (its e-mail) is refused.
func TestBuiltinTokenComponents(t *testing.T) {
	cluster, err := memkafka.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	idp := idptest.Start(t)
	dir := t.TempDir()
	const magic = 11
	produce := func(p *kafkatest.Proxy, topic string) error {
		cl := franzClient(t, p, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.RequestRetries(1), kgo.RetryTimeout(2*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	}
	gatewayTo := func(upstream *kafkatest.Proxy, method, command string, params ...string) *kafkatest.Proxy {
		return kafkatest.StartProxy(t, []string{upstream.Bootstrap}, func(cfg *config.Config) {
			cfg.Kafka.Gateway = config.Gateway{Enable: true, Command: command, Params: params, Magic: magic, Method: method, Timeout: 5 * time.Second}
		})
	}

	t.Run("google", func(t *testing.T) {
		server := func(emailRegex string) *kafkatest.Proxy {
			return kafkatest.StartProxy(t, cluster.ListenAddrs(), func(cfg *config.Config) {
				cfg.Proxy.Gateway = config.Gateway{Enable: true, Command: idtoken.GoogleIDInfo, Magic: magic, Method: "google-id", Timeout: 5 * time.Second,
					Params: []string{"--certs-url", idp.URL + "/certs", "--audience", "kafka-gateway", "--email-regex", emailRegex}}
			})
		}
		sa := idp.ServiceAccountFile(dir)
		good := gatewayTo(server(`^gateway@project\.iam\.gserviceaccount\.com$`), "google-id", idtoken.GoogleIDProvider,
			"--credentials-file", sa, "--target-audience", "kafka-gateway")
		if err := produce(good, "google-gateway"); err != nil {
			t.Fatalf("produce through google-id-provider -> google-id-info: %v", err)
		}
		strict := server(`^someone-else@`)
		refused := gatewayTo(strict, "google-id", idtoken.GoogleIDProvider, "--credentials-file", sa, "--target-audience", "kafka-gateway")
		if err := produce(refused, "google-gateway"); err == nil {
			t.Error("a service account the server does not admit got through")
		}
		if !strict.Logs.WaitFor(5*time.Second, "matches no --email-regex") {
			t.Error("the e-mail refusal is not logged")
		}
	})

	t.Run("oidc", func(t *testing.T) {
		server := kafkatest.StartProxy(t, cluster.ListenAddrs(), func(cfg *config.Config) {
			cfg.Proxy.Gateway = config.Gateway{Enable: true, Command: config.BuiltinJWT, Magic: magic, Method: "oidc", Timeout: 5 * time.Second,
				JWT: config.GatewayJWT{JWKSURL: idp.URL + "/certs", Issuer: idp.URL, Audience: "kafka", SubjectRegex: "^" + idptest.ClientID + "$"}}
		})
		client := gatewayTo(server, "oidc", idtoken.OIDCProvider, "--credentials-file", idp.OIDCFile(dir, "client_credentials"))
		if err := produce(client, "oidc-gateway"); err != nil {
			t.Fatalf("produce through oidc-provider -> jwt: %v", err)
		}
	})

	t.Run("sasl-plugin", func(t *testing.T) {
		front := kafkatest.StartProxy(t, cluster.ListenAddrs(), func(cfg *config.Config) {
			cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{"OAUTHBEARER"},
				JWT: config.LocalJWT{JWKSURL: idp.URL + "/certs", Issuer: idp.URL, Audience: "kafka", ClockSkew: 30 * time.Second}}
		})
		p := kafkatest.StartProxy(t, []string{front.Bootstrap}, func(cfg *config.Config) {
			cfg.Kafka.SASL.Plugin = config.TokenPlugin{Enable: true, Command: idtoken.OIDCProvider, Mechanism: "OAUTHBEARER", Timeout: 10 * time.Second,
				Params: []string{"--credentials-file", idp.OIDCFile(dir, "password")}}
		})
		if err := produce(p, "oidc-sasl"); err != nil {
			t.Fatalf("produce with OAUTHBEARER tokens from oidc-provider: %v", err)
		}
		if !front.Logs.WaitFor(5*time.Second, "principal=User:"+idptest.Username) {
			t.Errorf("the front proxy did not see the password grant's user:\n%s", front.Logs.String())
		}
	})
}
