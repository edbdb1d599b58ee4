package integration

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin/plugintest"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// TestGatewayChain: client → client-side proxy → server-side proxy →
// broker, the proxies joined by the gateway handshake of the proxy we
// replace with real plugins on both sides (a token provider, a token
// info). A client-side proxy with a forged token, a wrong magic or
// method, a plain Kafka client and a peer announcing a huge handshake
// are each refused by the server side before anything is forwarded,
// and it keeps serving.
func TestGatewayChain(t *testing.T) {
	bin := plugintest.Binary(t)
	cluster, err := memkafka.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	const magic, method = 0x6b61666b61, "test-gateway"
	server := kafkatest.StartProxy(t, cluster.ListenAddrs(), func(cfg *config.Config) {
		cfg.Proxy.Gateway = config.Gateway{Enable: true, Command: bin, Params: []string{"--kind", "token", "--token-signature", "good-sig"},
			Magic: magic, Method: method, Timeout: 5 * time.Second, LogLevel: "info"}
	})
	write := tempWriter(t)
	clientSide := func(t *testing.T, token string, m uint64, meth string) *kafkatest.Proxy {
		tok := write("token-"+token, []byte(token+"\n"))
		return kafkatest.StartProxy(t, []string{server.Bootstrap}, func(cfg *config.Config) {
			cfg.Kafka.DialTimeout = 5 * time.Second
			cfg.Kafka.Gateway = config.Gateway{Enable: true, Command: bin, Params: []string{"--kind", "provider", "--token-file", tok},
				Magic: m, Method: meth, Timeout: 5 * time.Second, LogLevel: "info"}
		})
	}
	produce := func(p *kafkatest.Proxy, within time.Duration) error {
		cl := franzClient(t, p, kgo.DefaultProduceTopic("through-gateway"), kgo.AllowAutoTopicCreation(), kgo.RequestRetries(1), kgo.RetryTimeout(within))
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	}

	good := clientSide(t, "hdr.payload.good-sig", magic, method)
	if err := produce(good, 10*time.Second); err != nil {
		t.Fatalf("produce through the gateway chain: %v", err)
	}
	accepted := server.MetricSum(t, "proxy_connections_total", nil)

	for _, tc := range []struct {
		name, token, method string
		magic               uint64
	}{
		{"forged token", "hdr.payload.forged", method, magic},
		{"wrong magic", "hdr.payload.good-sig", method, magic + 1},
		{"wrong method", "hdr.payload.good-sig", "other", magic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := clientSide(t, tc.token, tc.magic, tc.method)
			if err := produce(bad, 2*time.Second); err == nil {
				t.Fatal("a client-side proxy failing the handshake got through")
			}
			if !bad.Logs.WaitFor(5*time.Second, "gateway handshake refused") {
				t.Error("the client side does not log the refusal")
			}
			if n := bad.MetricSum(t, "proxy_upstream_dial_errors_total", func(l map[string]string) bool { return l["reason"] == "gateway" }); n == 0 {
				t.Error("refused dials not counted with reason gateway")
			}
		})
	}
	if !server.Logs.WaitFor(5*time.Second, "gateway") {
		t.Error("the server side does not log the refused handshakes")
	}

	// A plain Kafka client at the server side, and a peer announcing a
	// 4 GiB handshake: closed without an answer, nothing forwarded.
	direct := franzClient(t, server, kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := direct.Ping(ctx); err == nil {
		t.Error("a client without the handshake was served")
	}
	conn, err := net.Dial("tcp", server.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	var head [12]byte
	binary.BigEndian.PutUint64(head[:], magic)
	binary.BigEndian.PutUint32(head[8:], 0xffffffff)
	_, _ = conn.Write(head[:])
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 4)); err == nil || n > 0 {
		t.Errorf("an oversized handshake was answered (%d bytes, %v)", n, err)
	}
	conn.Close()
	if !server.Logs.WaitFor(5*time.Second, "larger than") {
		t.Error("the oversized handshake is not logged")
	}
	if err := produce(good, 10*time.Second); err != nil {
		t.Errorf("after the refusals, the good chain no longer serves: %v", err)
	}
	if server.MetricSum(t, "proxy_connections_total", nil) <= accepted {
		t.Error("no connection counted at the server side")
	}
	server.CheckNoBypass(t)
}

// TestGatewayJWT: the built-in jwt method, without plugins: the client
// side sends a signed JWT from a file, the server side checks it against
// a JWKS file, its issuer, audience and a subject pattern.
func TestGatewayJWT(t *testing.T) {
	cluster, err := memkafka.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	idp, other := newIDP(t), newIDP(t)
	const magic, method = 7, "jwt"
	server := kafkatest.StartProxy(t, cluster.ListenAddrs(), func(cfg *config.Config) {
		cfg.Proxy.Gateway = config.Gateway{Enable: true, Command: config.BuiltinJWT, Magic: magic, Method: method, Timeout: 5 * time.Second,
			JWT: config.GatewayJWT{JWKSFile: idp.jwks, Issuer: "https://idp.test", Audience: "kafka-gateway", SubjectRegex: "^proxy-"}}
	})
	write := tempWriter(t)
	produceWith := func(name, token string) error {
		tok := write(name, []byte(token))
		p := kafkatest.StartProxy(t, []string{server.Bootstrap}, func(cfg *config.Config) {
			cfg.Kafka.DialTimeout = 5 * time.Second
			cfg.Kafka.Gateway = config.Gateway{Enable: true, Command: config.BuiltinJWT, Magic: magic, Method: method, Timeout: 5 * time.Second,
				JWT: config.GatewayJWT{TokenFile: tok}}
		})
		cl := franzClient(t, p, kgo.DefaultProduceTopic("jwt-gateway"), kgo.AllowAutoTopicCreation(), kgo.RequestRetries(1), kgo.RetryTimeout(2*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	}
	if err := produceWith("good", idp.token(t, "proxy-orders", "kafka-gateway", time.Hour)); err != nil {
		t.Fatalf("produce through the jwt gateway: %v", err)
	}
	for name, tok := range map[string]string{
		"subject":  idp.token(t, "intruder", "kafka-gateway", time.Hour),
		"audience": idp.token(t, "proxy-orders", "elsewhere", time.Hour),
		"key":      other.token(t, "proxy-orders", "kafka-gateway", time.Hour),
	} {
		if err := produceWith(name, tok); err == nil {
			t.Errorf("a token with the wrong %s got through", name)
		}
	}
	if !server.Logs.WaitFor(5*time.Second, "does not match --auth-gateway-server-jwt-subject-regex") {
		t.Error("the subject refusal is not logged")
	}
}
