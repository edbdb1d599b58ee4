package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/krbtest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// TestGSSAPI: the proxy authenticates to a Kerberos broker through a real
// MIT KDC started on loopback, with a password (--gssapi-auth-type USER)
// and with a keytab (KEYTAB); the broker at 127.0.0.1 is known to the KDC
// as kafka/localhost, which --gssapi-spn-host-mapping says. A wrong
// password and a missing mapping fail with the Kerberos reason.
func TestGSSAPI(t *testing.T) {
	kdc := krbtest.Start(t)
	brokerKeytab := kdc.AddService(t, "kafka/localhost")
	kdc.AddUser(t, "proxy", "proxy-secret")
	svcKeytab := kdc.AddService(t, "svc-orders")
	c := kafkatest.StartSecureCluster(t, memkafka.GSSAPI, memkafka.WithBrokers(1), memkafka.WithKeytab(brokerKeytab),
		memkafka.WithKfakeOpts(kfake.AllowAutoTopicCreation()))
	base := config.GSSAPI{Realm: krbtest.Realm, KerberosConfigPath: kdc.Krb5Conf, ServiceName: "kafka", DisablePAFXFAST: true,
		SPNHostsMapping: map[string]string{"127.0.0.1": "localhost"}}
	start := func(t *testing.T, g config.GSSAPI) *kafkatest.Proxy {
		return kafkatest.StartProxy(t, c.Addrs, func(cfg *config.Config) {
			cfg.Kafka = c.Kafka
			cfg.Kafka.DialTimeout = 5 * time.Second
			cfg.Kafka.SASL.GSSAPI = g
		})
	}
	user, keytab := base, base
	user.AuthType, user.Username, user.Password = "USER", "proxy", "proxy-secret"
	keytab.AuthType, keytab.Username, keytab.KeytabPath = "KEYTAB", "svc-orders", svcKeytab
	for name, g := range map[string]config.GSSAPI{"password": user, "keytab": keytab} {
		t.Run(name, func(t *testing.T) {
			p := start(t, g)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl := franzClient(t, p, kgo.DefaultProduceTopic("kerberos-"+name), kgo.AllowAutoTopicCreation())
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over GSSAPI")}).FirstErr(); err != nil {
				t.Fatalf("produce through the proxy: %v", err)
			}
			if n := p.MetricSum(t, "proxy_upstream_auth_total", func(l map[string]string) bool {
				return l["mechanism"] == "GSSAPI" && l["result"] == "success"
			}); n == 0 {
				t.Error("no GSSAPI authentication counted")
			}
		})
	}

	wrong := user
	wrong.Password = "not-it"
	unmapped := user
	unmapped.SPNHostsMapping = nil
	for name, tc := range map[string]struct {
		g    config.GSSAPI
		want string
	}{
		"wrong password": {wrong, "kerberos login as proxy@" + krbtest.Realm},
		"no SPN mapping": {unmapped, "kerberos service ticket for kafka/127.0.0.1"},
	} {
		t.Run(name, func(t *testing.T) {
			p := start(t, tc.g)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := p.Server.Ready(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ready: %v, want not ready naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "not-it") {
				t.Errorf("the password reached the error: %v", err)
			}
		})
	}
}
