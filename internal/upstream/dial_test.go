package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/logbuf"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

type recHooks struct {
	mu     sync.Mutex
	events []string
}

func (h *recHooks) add(kind, broker, mech string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, kind+" "+mech+" "+broker)
}
func (h *recHooks) AuthSucceeded(b, m string)            { h.add("ok", b, m) }
func (h *recHooks) AuthFailed(b, m string)               { h.add("fail", b, m) }
func (h *recHooks) Reauthenticated(b, m string)          { h.add("reauth", b, m) }
func (h *recHooks) Dialed(string, time.Duration, string) {}
func (h *recHooks) count(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if strings.HasPrefix(e, kind+" ") {
			n++
		}
	}
	return n
}

func newDialer(t *testing.T, cfg config.Kafka) (*upstream.Dialer, *recHooks, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	hooks := &recHooks{}
	d, err := upstream.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), hooks)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, hooks, logs
}

// checkMetadata issues Metadata v12 (flexible) on the dialled connection
// and checks the brokers it lists are the cluster's.
func checkMetadata(t *testing.T, ctx context.Context, rt upstream.RoundTripper, want []string) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	raw, err := rt.RoundTrip(ctx, req)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	var got []string
	for _, b := range raw.(*kmsg.MetadataResponse).Brokers {
		got = append(got, fmt.Sprintf("%s:%d", b.Host, b.Port))
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("Metadata brokers = %v, want %v", got, want)
	}
}

func TestDialEveryMode(t *testing.T) {
	for _, mode := range memkafka.SecurityModes {
		t.Run(mode.String(), func(t *testing.T) {
			c := kafkatest.StartSecureCluster(t, mode, memkafka.WithBrokers(2))
			d, hooks, logs := newDialer(t, c.Kafka)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := d.Dial(ctx, c.Addrs[1])
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			if conn.Mechanism != mode.SASLMechanism() {
				t.Errorf("Mechanism = %q, want %q", conn.Mechanism, mode.SASLMechanism())
			}
			// Without connections.max.reauth.ms a broker announces a
			// session lifetime only for credentials that expire (tokens),
			// up to their expiry.
			switch mode.SASLMechanism() {
			case config.MechanismOAuthBearer, config.MechanismAWSMSKIAM:
				if conn.SessionLifetime <= 0 || conn.SessionLifetime > time.Hour {
					t.Errorf("SessionLifetime = %v, want the token's remaining lifetime", conn.SessionLifetime)
				}
			default:
				if conn.SessionLifetime != 0 {
					t.Errorf("SessionLifetime = %v without connections.max.reauth.ms", conn.SessionLifetime)
				}
			}
			checkMetadata(t, ctx, upstream.NewConnRoundTripper(conn, "test"), c.Addrs)
			wantOK := 0
			if mode.SASLMechanism() != "" || mode == memkafka.MTLS {
				wantOK = 1
			}
			if got := hooks.count("ok"); got != wantOK {
				t.Errorf("AuthSucceeded calls = %d, want %d (%v)", got, wantOK, hooks.events)
			}
			if c.Password != "" && strings.Contains(logs.String(), c.Password) {
				t.Errorf("log contains the password:\n%s", logs.String())
			}
		})
	}
}

// assertAuthError checks err names broker, mechanism and wantMsg, and
// contains none of the secrets.
func assertAuthError(t *testing.T, err error, broker, mech, wantMsg string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Dial succeeded, want an authentication error")
	}
	var ae *upstream.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *AuthError", err, err)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, want := range []string{broker, mech, wantMsg} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}

func TestDialWrongPassword(t *testing.T) {
	for _, mode := range []memkafka.SecurityMode{memkafka.SASLPlain, memkafka.SCRAM256, memkafka.SCRAM512TLS} {
		t.Run(mode.String(), func(t *testing.T) {
			c := kafkatest.StartSecureCluster(t, mode, memkafka.WithBrokers(1))
			cfg := c.Kafka
			cfg.SASL.Password = "wrong-" + c.Password
			d, hooks, logs := newDialer(t, cfg)
			_, err := d.Dial(context.Background(), c.Addrs[0])
			// Kafka's words: PlainSaslServer's own, SCRAM's the generic ones.
			want := "invalid credentials with SASL mechanism " + mode.SASLMechanism()
			if mode.SASLMechanism() == config.MechanismPlain {
				want = "Authentication failed: Invalid username or password"
			}
			assertAuthError(t, err, c.Addrs[0], mode.SASLMechanism(), want, cfg.SASL.Password, c.Password)
			if hooks.count("fail") != 1 {
				t.Errorf("hooks = %v, want one failure", hooks.events)
			}
			if strings.Contains(logs.String(), cfg.SASL.Password) {
				t.Errorf("log contains the password")
			}
		})
	}
}

func TestDialUnknownUser(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.SCRAM512, memkafka.WithBrokers(1))
	cfg := c.Kafka
	cfg.SASL.Username = "mallory"
	d, _, _ := newDialer(t, cfg)
	_, err := d.Dial(context.Background(), c.Addrs[0])
	assertAuthError(t, err, c.Addrs[0], "SCRAM-SHA-512", "Authentication failed", c.Password)
}

func TestDialMechanismNotEnabled(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.OAuthJWTFile, memkafka.WithBrokers(1))
	cfg := c.Kafka
	cfg.SASL.Method, cfg.SASL.Username, cfg.SASL.Password = "PLAIN", "u", "secret-pw"
	d, _, _ := newDialer(t, cfg)
	_, err := d.Dial(context.Background(), c.Addrs[0])
	assertAuthError(t, err, c.Addrs[0], "PLAIN", "does not enable PLAIN (it offers OAUTHBEARER)", "secret-pw")
}

func TestDialUntrustedBroker(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.TLSOnly, memkafka.WithBrokers(1))
	other, err := certs.NewRoot("some other CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := other.WriteCert(t.TempDir(), "other", false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Kafka
	cfg.TLS.CAChainCertFile = ca
	d, hooks, _ := newDialer(t, cfg)
	_, err = d.Dial(context.Background(), c.Addrs[0])
	assertAuthError(t, err, c.Addrs[0], "TLS", "not signed by a trusted CA")
	if hooks.count("fail") != 1 {
		t.Errorf("hooks = %v", hooks.events)
	}
}

func TestDialWrongServerName(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.TLSOnly, memkafka.WithBrokers(1))
	cfg := c.Kafka
	cfg.TLS.ServerName = "broker.example.com"
	d, _, _ := newDialer(t, cfg)
	_, err := d.Dial(context.Background(), c.Addrs[0])
	assertAuthError(t, err, c.Addrs[0], "TLS", "--tls-server-name")

	cfg.TLS.ServerName = "localhost" // in the certificate's SANs
	d, _, _ = newDialer(t, cfg)
	conn, err := d.Dial(context.Background(), c.Addrs[0])
	if err != nil {
		t.Fatalf("Dial with --tls-server-name localhost: %v", err)
	}
	conn.Close()
}

func TestDialMTLSWithoutClientCert(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.MTLS, memkafka.WithBrokers(1))
	cfg := c.Kafka
	cfg.TLS.ClientCertFile, cfg.TLS.ClientKeyFile = "", ""
	d, _, _ := newDialer(t, cfg)
	conn, err := d.Dial(context.Background(), c.Addrs[0])
	if err == nil {
		// TLS 1.3: the rejection arrives with the first read.
		_, err = upstream.NewConnRoundTripper(conn, "").RoundTrip(context.Background(), kmsg.NewPtrMetadataRequest())
		conn.Close()
		if err == nil {
			t.Fatal("broker with ssl.client.auth=required accepted a client without a certificate")
		}
		return
	}
	assertAuthError(t, err, c.Addrs[0], "TLS", "client certificate")
}

func TestDialExpiredClientCert(t *testing.T) {
	for _, format := range []certs.KeyFormat{certs.PKCS8, certs.Legacy} {
		t.Run(fmt.Sprint(format), func(t *testing.T) {
			const pw = "key-password-1"
			c := kafkatest.StartSecureCluster(t, memkafka.MTLS, memkafka.WithBrokers(1), memkafka.WithClientKeyPassword(format, pw))
			cfg := c.Kafka
			cfg.TLS.Refresh = time.Nanosecond
			d, hooks, _ := newDialer(t, cfg)
			conn, err := d.Dial(context.Background(), c.Addrs[0])
			if err != nil {
				t.Fatalf("Dial with a valid encrypted key: %v", err)
			}
			conn.Close()

			// Rotate to an expired certificate: the dialer reloads it (refresh)
			// and the broker must reject it.
			expired := kafkatest.IssueClientCert(t, c, "kafka-proxy", certs.Options{Expired: true}, format, pw)
			rename(t, expired.Cert, c.ClientCert)
			rename(t, expired.Key, c.ClientKey)
			_, err = d.Dial(context.Background(), c.Addrs[0])
			assertAuthError(t, err, c.Addrs[0], "TLS", "expired", pw)
			if hooks.count("fail") != 1 {
				t.Errorf("hooks = %v", hooks.events)
			}
		})
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
	// Make the change visible even on filesystems with coarse mtimes.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(to, later, later); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsExpiredClientCert(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.MTLS, memkafka.WithBrokers(1))
	expired := kafkatest.IssueClientCert(t, c, "old", certs.Options{Expired: true}, certs.PKCS8, "")
	cfg := c.Kafka
	cfg.TLS.ClientCertFile, cfg.TLS.ClientKeyFile = expired.Cert, expired.Key
	_, err := upstream.New(cfg, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), expired.Cert) {
		t.Fatalf("New = %v, want an error naming the expired certificate file", err)
	}
}

func TestDialRejectedToken(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.OAuthJWTFile, memkafka.WithBrokers(1))
	d, hooks, logs := newDialer(t, c.Kafka)
	bad := kafkatest.WriteToken(t, c, "proxy-user", -time.Minute) // expired: the broker rejects it
	_, err := d.Dial(context.Background(), c.Addrs[0])
	assertAuthError(t, err, c.Addrs[0], "OAUTHBEARER", `{"status":"invalid_token"}`, bad)
	if hooks.count("fail") != 1 {
		t.Errorf("hooks = %v", hooks.events)
	}
	if strings.Contains(logs.String(), bad) {
		t.Error("log contains the token")
	}
}

func TestDialFailingTokenCommand(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.OAuthJWTCommand, memkafka.WithBrokers(1), memkafka.WithTokenTTL(time.Second))
	flag := c.Dir + "/fail"
	cfg := c.Kafka
	cfg.SASL.OAuth.TokenCommand = fmt.Sprintf("if [ -f %s ]; then echo 'token service unavailable' >&2; exit 3; fi; cat %s", flag, c.TokenFile)
	d, hooks, _ := newDialer(t, cfg)
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the cached token (1s JWT) is no longer fresh
	_, err := d.Dial(context.Background(), c.Addrs[0])
	assertAuthError(t, err, c.Addrs[0], "OAUTHBEARER", "token service unavailable")
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q does not give the exit status", err)
	}
	if hooks.count("fail") != 1 {
		t.Errorf("hooks = %v", hooks.events)
	}
}

func TestNewFailsFast(t *testing.T) {
	dir := t.TempDir()
	base := config.Default().Kafka
	cases := []struct {
		name string
		edit func(*config.Kafka)
		want string
	}{
		{"missing CA", func(k *config.Kafka) { k.TLS.Enable, k.TLS.CAChainCertFile = true, dir+"/nope.pem" }, "tls CA chain: stat " + dir + "/nope.pem"},
		{"missing password file", func(k *config.Kafka) {
			k.SASL = config.SASL{Enable: true, Method: "PLAIN", Username: "u", PasswordFile: dir + "/pw"}
		}, "sasl password file: open"},
		{"unset password env", func(k *config.Kafka) {
			k.SASL = config.SASL{Enable: true, Method: "SCRAM-SHA-256", Username: "u", PasswordEnv: "KAFKA_PROXY_TEST_UNSET_PW"}
		}, "environment variable KAFKA_PROXY_TEST_UNSET_PW is not set"},
		{"scram jaas under PLAIN without TLS", func(k *config.Kafka) {
			path := dir + "/scram.jaas"
			_ = os.WriteFile(path, []byte(`org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";`), 0o600)
			k.SASL = config.SASL{Enable: true, Method: "PLAIN", JaasConfigFile: path}
		}, "would cross the network in clear text"},
		{"failing token command", func(k *config.Kafka) {
			k.SASL = config.SASL{Enable: true, Method: "OAUTHBEARER", OAuth: config.OAuth{TokenCommand: "echo nope >&2; exit 1", TokenCommandTimeout: 5 * time.Second}}
		}, "oauth token command failed: exit status 1: nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			_, err := upstream.New(cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestPasswordSources(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.SCRAM256, memkafka.WithBrokers(1))
	dir := t.TempDir()
	pwFile := dir + "/pw"
	if err := os.WriteFile(pwFile, []byte(c.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jaas := dir + "/client.jaas"
	if err := os.WriteFile(jaas, []byte("KafkaClient {\n  org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=\""+c.User+"\"\n  password=\""+c.Password+"\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plainJAAS := dir + "/plain.jaas"
	if err := os.WriteFile(plainJAAS, []byte("KafkaClient {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=\""+c.User+"\"\n  password=\""+c.Password+"\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKA_PROXY_TEST_PW", c.Password)
	for name, edit := range map[string]func(*config.SASL){
		"file": func(s *config.SASL) { s.Password, s.PasswordFile = "", pwFile },
		"env":  func(s *config.SASL) { s.Password, s.PasswordEnv = "", "KAFKA_PROXY_TEST_PW" },
		"jaas": func(s *config.SASL) { s.Username, s.Password, s.JaasConfigFile = "", "", jaas },
		// As in the proxy we replace, the login module is ignored: its
		// username and password serve --sasl-method, with a warning.
		"jaas of another module": func(s *config.SASL) { s.Username, s.Password, s.JaasConfigFile = "", "", plainJAAS },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := c.Kafka
			edit(&cfg.SASL)
			d, _, logs := newDialer(t, cfg)
			for range 2 {
				conn, err := d.Dial(context.Background(), c.Addrs[0])
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				conn.Close()
			}
			warned := strings.Count(logs.String(), "PlainLoginModule in "+plainJAAS+" (--sasl-jaas-config-file) serves PLAIN; its username and password are used with --sasl-method SCRAM-SHA-256")
			if want := map[bool]int{true: 1, false: 0}[name == "jaas of another module"]; warned != want {
				t.Errorf("login module warning logged %d times, want %d:\n%s", warned, want, logs)
			}
		})
	}
}

// TestAWSMSKIAMRegionFromFlag: behind a tunnel the broker's name carries
// no region, and --sasl-aws-region alone must be enough to sign.
func TestAWSMSKIAMRegionFromFlag(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.MSKIAM, memkafka.WithBrokers(1))
	t.Setenv("AWS_REGION", "") // only the configured region is left
	t.Setenv("AWS_DEFAULT_REGION", "")
	if c.Kafka.SASL.AWS.Region == "" {
		t.Fatal("kit did not configure a region")
	}
	d, _, _ := newDialer(t, c.Kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := d.Dial(ctx, c.Addrs[0])
	if err != nil {
		t.Fatalf("Dial with the region from config only: %v", err)
	}
	conn.Close()
}

// --dial-address-mapping: the dial for a broker goes to the mapped
// address (matched case-insensitively by host), and a failure names both.
func TestDialAddressMapping(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cfg := config.Default().Kafka
	cfg.DialTimeout = 2 * time.Second
	cfg.DialAddressMappings = []config.DialMapping{
		{From: "kafka-0.internal.invalid:9092", To: ln.Addr().String()},
		{From: "kafka-1.internal.invalid:9092", To: "127.0.0.1:1"},
	}
	d, _, _ := newDialer(t, cfg)
	c, err := d.Dial(context.Background(), "KAFKA-0.internal.invalid:9092")
	if err != nil {
		t.Fatalf("mapped dial: %v", err)
	}
	c.Close()
	_, err = d.Dial(context.Background(), "kafka-1.internal.invalid:9092")
	if err == nil || !strings.Contains(err.Error(), "kafka-1.internal.invalid:9092 at 127.0.0.1:1 (--dial-address-mapping)") {
		t.Fatalf("mapped dial to a closed port: %v", err)
	}
	if _, err := d.Dial(context.Background(), "kafka-2.internal.invalid:9092"); err == nil {
		t.Fatal("an unmapped unresolvable broker was reached")
	}
}
