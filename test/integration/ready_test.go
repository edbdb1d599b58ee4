package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// TestReadyUpstreamHandshake: ready means the whole upstream handshake
// completes with a broker, not that its port accepts TCP. With a CA that
// does not sign the brokers' certificates, or a wrong password, the proxy
// is not ready and says why; with the right settings it is.
func TestReadyUpstreamHandshake(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.SCRAM512TLS, memkafka.WithBrokers(1))
	for _, tc := range []struct {
		name   string
		mutate func(k *config.Kafka)
		reason string // "" for ready
	}{
		{"right settings", func(*config.Kafka) {}, ""},
		{"wrong CA", func(k *config.Kafka) { k.TLS.CAChainCertFile = "" }, "certificate"},
		{"wrong password", func(k *config.Kafka) { k.SASL.Password, k.SASL.PasswordFile = "not-the-password", "" }, "SASL_AUTHENTICATION_FAILED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := kafkatest.StartProxy(t, c.Addrs, func(cfg *config.Config) {
				cfg.Kafka = c.Kafka
				cfg.Kafka.DialTimeout = 5 * time.Second
				tc.mutate(&cfg.Kafka)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := p.Server.Ready(ctx)
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("not ready with the right settings: %v", err)
			case tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason)):
				t.Fatalf("ready answer %v, want not ready naming %q", err, tc.reason)
			case tc.reason != "" && strings.Contains(err.Error(), "not-the-password"):
				t.Fatalf("the password reached the ready answer: %v", err)
			}
			if tc.reason != "" && !p.Logs.WaitFor(time.Second, "not ready: no broker completes the upstream handshake") {
				t.Error("no log line saying why the proxy is not ready")
			}
		})
	}
}
