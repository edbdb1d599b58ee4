package integration

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin/plugintest"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
	"github.com/kafka-proxy/kafka-proxy/internal/metrics"
	"github.com/kafka-proxy/kafka-proxy/internal/server"
)

// TestSASLPlugin: with --sasl-plugin-*, the proxy authenticates to an
// OAUTHBEARER broker with the tokens a token-provider plugin of the proxy
// we replace hands out (a real go-plugin process, in both of its forms);
// a plugin that gives no token stops the proxy at start with the reason.
func TestSASLPlugin(t *testing.T) {
	bin := plugintest.Binary(t)
	c := kafkatest.StartSecureCluster(t, memkafka.OAuthJWTFile, memkafka.WithBrokers(1), memkafka.WithKfakeOpts(kfake.AllowAutoTopicCreation()))
	for _, form := range []string{"netrpc", "grpc"} {
		t.Run(form, func(t *testing.T) {
			params := []string{"--kind", "provider", "--token-file", c.TokenFile}
			if form == "grpc" {
				params = append(params, "--grpc")
			}
			p := kafkatest.StartProxy(t, c.Addrs, func(cfg *config.Config) {
				cfg.Kafka = c.Kafka
				// As manifests for the proxy we replace write it: with
				// --sasl-enable (grpc) or without (netrpc); the plugin wins.
				cfg.Kafka.SASL.Enable, cfg.Kafka.SASL.OAuth.TokenFile = form == "grpc", ""
				cfg.Kafka.SASL.Method = "PLAIN"
				cfg.Kafka.SASL.Plugin = config.TokenPlugin{Enable: true, Command: bin, Params: params, Mechanism: "OAUTHBEARER", Timeout: 10 * time.Second, LogLevel: "info"}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl := franzClient(t, p, kgo.DefaultProduceTopic("plugin-"+form), kgo.AllowAutoTopicCreation())
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("with a plugin's token")}).FirstErr(); err != nil {
				t.Fatalf("produce through the proxy: %v", err)
			}
			if n := p.MetricSum(t, "proxy_upstream_auth_total", func(l map[string]string) bool {
				return l["mechanism"] == "OAUTHBEARER" && l["result"] == "success"
			}); n == 0 {
				t.Error("no OAUTHBEARER authentication counted")
			}
		})
	}

	t.Run("no token", func(t *testing.T) {
		refuse := tempWriter(t)("token", []byte("refuse\n"))
		cfg := config.Default()
		cfg.Proxy.BootstrapServers = []config.Mapping{{Upstream: c.Addrs[0], Listen: "127.0.0.1:0"}}
		cfg.Kafka = c.Kafka
		cfg.Kafka.SASL.Enable, cfg.Kafka.SASL.OAuth.TokenFile = false, ""
		cfg.Kafka.SASL.Plugin = config.TokenPlugin{Enable: true, Command: bin, Params: []string{"--kind", "provider", "--token-file", refuse}, Timeout: 10 * time.Second}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		_, err := server.New(cfg, slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
		if err == nil || !strings.Contains(err.Error(), "gave no token") {
			t.Fatalf("start with a plugin that gives no token: %v", err)
		}
	})
}
