package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// execute runs the command line args and returns the configuration the
// server would have started with (nil if it did not start), its output
// and its error.
func execute(t *testing.T, args ...string) (*config.Config, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	var got *config.Config
	root := newRoot(&out, &errOut, func(_ context.Context, cfg config.Config, _ *slog.Logger, _ *reloader) error {
		got = &cfg
		return nil
	})
	root.SetArgs(args)
	err := root.Execute()
	return got, out.String() + errOut.String(), err
}

const baseMapping = "kafka-0:9092,127.0.0.1:32400"

func baseConfig() config.Config {
	c := config.Default()
	c.Proxy.BootstrapServers = []config.Mapping{{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"}}
	return c
}

// TestDropInFlags: every flag of the widely deployed `kafka-proxy server`
// lands in its config field and changes nothing else.
func TestDropInFlags(t *testing.T) {
	cases := []struct {
		args []string
		edit func(*config.Config)
	}{
		{[]string{"--bootstrap-server-mapping", "kafka-1:9092,0.0.0.0:32401,proxy.example.com:443"}, func(c *config.Config) {
			c.Proxy.BootstrapServers = append(c.Proxy.BootstrapServers, config.Mapping{Upstream: "kafka-1:9092", Listen: "0.0.0.0:32401", Advertised: "proxy.example.com:443"})
		}},
		{[]string{"--external-server-mapping", "kafka-2:9092,other:32402", "--external-server-mapping=kafka-3:9092,other:32403"}, func(c *config.Config) {
			c.Proxy.ExternalServers = []config.Mapping{{Upstream: "kafka-2:9092", Listen: "other:32402"}, {Upstream: "kafka-3:9092", Listen: "other:32403"}}
		}},
		{[]string{"--dial-address-mapping", "kafka-0.internal:9092,127.0.0.1:19092", "--dial-address-mapping=kafka-1.internal:9092,tunnel:19093"}, func(c *config.Config) {
			c.Kafka.DialAddressMappings = []config.DialMapping{{From: "kafka-0.internal:9092", To: "127.0.0.1:19092"}, {From: "kafka-1.internal:9092", To: "tunnel:19093"}}
		}},
		{[]string{"--dynamic-advertised-listener", "kafka-{{.brokerId}}.example.com:9092"}, func(c *config.Config) {
			c.Proxy.DynamicListeners.AdvertisedListener = "kafka-{{.brokerId}}.example.com:9092"
		}},
		{[]string{"--forward-proxy", "socks5://proxy.corp:1080"}, func(c *config.Config) { c.Kafka.ForwardProxy = "socks5://proxy.corp:1080" }},
		{[]string{"--dynamic-listeners-disable"}, func(c *config.Config) { c.Proxy.DynamicListeners.Disable = true }},
		{[]string{"--dynamic-listeners-disable=true"}, func(c *config.Config) { c.Proxy.DynamicListeners.Disable = true }},
		{[]string{"--deterministic-listeners", "--dynamic-sequential-min-port", "32500"}, func(c *config.Config) {
			c.Proxy.DynamicListeners.Deterministic, c.Proxy.DynamicListeners.SequentialMinPort = true, 32500
		}},
		{[]string{"--dynamic-sequential-min-port=32600"}, func(c *config.Config) { c.Proxy.DynamicListeners.SequentialMinPort = 32600 }},
		{[]string{"--dynamic-sequential-min-port=32600", "--dynamic-sequential-max-ports", "10"}, func(c *config.Config) {
			c.Proxy.DynamicListeners.SequentialMinPort, c.Proxy.DynamicListeners.SequentialMaxPorts = 32600, 10
		}},
		{[]string{"--default-listener-ip", "0.0.0.0"}, func(c *config.Config) { c.Proxy.DynamicListeners.DefaultListenerIP = "0.0.0.0" }},
		{[]string{"--dynamic-advertised-listener", "proxy.example.com"}, func(c *config.Config) {
			c.Proxy.DynamicListeners.AdvertisedListener = "proxy.example.com"
		}},
		{[]string{"--forbidden-api-keys", "20,21", "--forbidden-api-keys", "32"}, func(c *config.Config) { c.Proxy.ForbiddenAPIKeys = []int{20, 21, 32} }},
		{[]string{"--producer-acks-0-disabled"}, func(c *config.Config) { c.Proxy.ProducerAcks0Disabled = true }},
		{[]string{"--kafka-client-id", "my-proxy"}, func(c *config.Config) { c.Kafka.ClientID = "my-proxy" }},
		{[]string{"--kafka-dial-timeout", "5s"}, func(c *config.Config) { c.Kafka.DialTimeout = 5 * time.Second }},
		{[]string{"--kafka-read-timeout", "7s"}, func(c *config.Config) { c.Kafka.ReadTimeout = 7 * time.Second }},
		{[]string{"--kafka-write-timeout", "9s"}, func(c *config.Config) { c.Kafka.WriteTimeout = 9 * time.Second }},
		{[]string{"--kafka-keep-alive", "0"}, func(c *config.Config) { c.Kafka.KeepAlive = 0 }},
		{[]string{"--kafka-max-open-requests", "12"}, func(c *config.Config) { c.Kafka.MaxOpenRequests = 12 }},
		{[]string{"--kafka-connection-read-buffer-size", "1024"}, func(c *config.Config) { c.Kafka.ConnectionReadBufferSize = 1024 }},
		{[]string{"--kafka-connection-write-buffer-size", "2048"}, func(c *config.Config) { c.Kafka.ConnectionWriteBufferSize = 2048 }},
		{[]string{"--proxy-listener-keep-alive", "13s"}, func(c *config.Config) { c.Proxy.ListenerKeepAlive = 13 * time.Second }},
		{[]string{"--proxy-listener-read-buffer-size", "3000"}, func(c *config.Config) { c.Proxy.ListenerReadBufferSize = 3000 }},
		{[]string{"--proxy-listener-write-buffer-size", "4000"}, func(c *config.Config) { c.Proxy.ListenerWriteBufferSize = 4000 }},
		{[]string{"--proxy-request-buffer-size", "5000"}, func(c *config.Config) { c.Proxy.RequestBufferSize = 5000 }},
		{[]string{"--proxy-response-buffer-size", "6000"}, func(c *config.Config) { c.Proxy.ResponseBufferSize = 6000 }},
		{[]string{"--http-listen-address", "127.0.0.1:9999"}, func(c *config.Config) { c.HTTP.ListenAddress = "127.0.0.1:9999" }},
		{[]string{"--http-health-path", "/healthz"}, func(c *config.Config) { c.HTTP.HealthPath = "/healthz" }},
		{[]string{"--http-metrics-path", "/prom"}, func(c *config.Config) { c.HTTP.MetricsPath = "/prom" }},
		{[]string{"--http-disable"}, func(c *config.Config) { c.HTTP.Disable = true }},
		{[]string{"--log-format", "json"}, func(c *config.Config) { c.Log.Format = "json" }},
		{[]string{"--log-level", "debug"}, func(c *config.Config) { c.Log.Level = "debug" }},
		{[]string{"--debug-enable"}, func(c *config.Config) { c.Debug.Enable = true }},
		{[]string{"--debug-listen-address", "127.0.0.1:6061"}, func(c *config.Config) { c.Debug.ListenAddress = "127.0.0.1:6061" }},
		// Additions of this proxy.
		{[]string{"--sni-listen-address", "0.0.0.0:9443", "--sni-bootstrap-host", "bootstrap.kafka.example.com",
			"--sni-broker-host-pattern", "broker-$(nodeId).kafka.example.com", "--sni-advertised-port", "443",
			"--proxy-listener-tls-enable", "--proxy-listener-cert-file", "c.pem", "--proxy-listener-key-file", "k.pem"}, func(c *config.Config) {
			c.Proxy.TLS.Enable, c.Proxy.TLS.CertFile, c.Proxy.TLS.KeyFile = true, "c.pem", "k.pem"
			c.Proxy.SNI = config.SNI{ListenAddress: "0.0.0.0:9443", BootstrapHost: "bootstrap.kafka.example.com", BrokerHostPattern: "broker-$(nodeId).kafka.example.com", AdvertisedPort: 443}
		}},
		{[]string{"--http-ready-path", "/readyz"}, func(c *config.Config) { c.HTTP.ReadyPath = "/readyz" }},
		{[]string{"--proxy-max-frame-size", "2048"}, func(c *config.Config) { c.Proxy.MaxFrameSize = 2048 }},
		{[]string{"--shutdown-drain-timeout", "3s"}, func(c *config.Config) { c.Proxy.DrainTimeout = 3 * time.Second }},
		{[]string{"--kafka-reauth-min-lifetime", "1s"}, func(c *config.Config) { c.Kafka.ReauthMinLifetime = time.Second }},
	}
	for _, c := range cases {
		t.Run(strings.TrimLeft(strings.SplitN(c.args[0], "=", 2)[0], "-"), func(t *testing.T) {
			got, out, err := execute(t, append([]string{"server", "--bootstrap-server-mapping", baseMapping}, c.args...)...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", c.args, err, out)
			}
			want := baseConfig()
			c.edit(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("%v:\n got %+v\nwant %+v", c.args, *got, want)
			}
		})
	}
}

// TestNoFlagsIsDefault: with only a mapping, nothing differs from the
// defaults (no flag default drifts away from config.Default).
func TestNoFlagsIsDefault(t *testing.T) {
	got, out, err := execute(t, "server", "--bootstrap-server-mapping", baseMapping)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := baseConfig(); !reflect.DeepEqual(*got, want) {
		t.Errorf("got %+v\nwant %+v", *got, want)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestYAMLWithFlagOverride: the file sets the base, flags given on the
// command line win (even when they repeat a default), slice flags replace
// the file's list, and settings no flag mentions keep the file's value.
func TestYAMLWithFlagOverride(t *testing.T) {
	path := writeFile(t, `
proxy:
  bootstrapServers:
    - {upstream: "kafka-0:9092", listen: "127.0.0.1:32400"}
    - {upstream: "kafka-1:9092", listen: "127.0.0.1:32401"}
  forbiddenApiKeys: [20, 21]
  dynamicListeners:
    disable: true
    defaultListenerIp: 0.0.0.0
kafka:
  clientId: from-file
  dialTimeout: 20s
http:
  listenAddress: 127.0.0.1:9090
log:
  format: json
  level: debug
`)
	got, out, err := execute(t, "server", "--config", path,
		"--bootstrap-server-mapping", "kafka-9:9092,127.0.0.1:32409",
		"--forbidden-api-keys", "32",
		"--log-level", "warn",
		"--log-format", "text", // the default, given explicitly: still wins
		"--dynamic-listeners-disable=false",
		"--kafka-read-timeout", "3s",
	)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := config.Default()
	want.Proxy.BootstrapServers = []config.Mapping{{Upstream: "kafka-9:9092", Listen: "127.0.0.1:32409"}}
	want.Proxy.ForbiddenAPIKeys = []int{32}
	want.Proxy.DynamicListeners.DefaultListenerIP = "0.0.0.0"
	want.Kafka.ClientID = "from-file"
	want.Kafka.DialTimeout = 20 * time.Second
	want.Kafka.ReadTimeout = 3 * time.Second
	want.HTTP.ListenAddress = "127.0.0.1:9090"
	want.Log.Format, want.Log.Level = "text", "warn"
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("got %+v\nwant %+v", *got, want)
	}

	// Without flags the file is taken as is.
	got, out, err = execute(t, "server", "--config", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Proxy.BootstrapServers) != 2 || !got.Proxy.DynamicListeners.Disable || got.Log.Level != "debug" || got.Kafka.ClientID != "from-file" {
		t.Errorf("file alone: %+v", *got)
	}
}

func TestMalformedMappingFlag(t *testing.T) {
	for _, flag := range []string{"--bootstrap-server-mapping", "--external-server-mapping"} {
		got, _, err := execute(t, "server", "--bootstrap-server-mapping", baseMapping, flag, "kafka-0:9092")
		if got != nil {
			t.Errorf("%s: server started", flag)
		}
		if err == nil || !strings.Contains(err.Error(), `"`+flag+`"`) ||
			!strings.Contains(err.Error(), "want remotehost:port,localhost:port[,advhost:advport]") {
			t.Errorf("%s: error %v, want it to name the flag and the expected form", flag, err)
		}
	}
	// With a file too: the flag is still named.
	path := writeFile(t, "log: {level: info}\n")
	if _, _, err := execute(t, "server", "--config", path, "--bootstrap-server-mapping", "a:1,b"); err == nil ||
		!strings.Contains(err.Error(), `"--bootstrap-server-mapping"`) || !strings.Contains(err.Error(), "local address") {
		t.Errorf("with --config: %v", err)
	}
}

func TestUnknownYAMLKey(t *testing.T) {
	path := writeFile(t, "proxy:\n  bootstrapServer:\n    - {upstream: \"k:1\", listen: \"l:2\"}\n")
	for _, cmd := range []string{"server", "validate"} {
		got, _, err := execute(t, cmd, "--config", path, "--bootstrap-server-mapping", baseMapping)
		if got != nil {
			t.Errorf("%s: started", cmd)
		}
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `proxy.bootstrapServer (line 2): unknown key "bootstrapServer"`) {
			t.Errorf("%s: error %v, want the file, the key path and line", cmd, err)
		}
	}
	if _, _, err := execute(t, "server", "--config", filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestVersionCommand(t *testing.T) {
	_, out, err := execute(t, "version")
	if err != nil || out != "kafka-proxy "+Version+"\n" {
		t.Errorf("version = %q, %v", out, err)
	}
}

// TestValidateCommand: validate starts nothing and prints every problem of
// file and flags together.
func TestValidateCommand(t *testing.T) {
	got, out, err := execute(t, "validate", "--bootstrap-server-mapping", baseMapping)
	if err != nil || out != "configuration is valid\n" || got != nil {
		t.Errorf("valid: %q, %v, started=%v", out, err, got != nil)
	}

	path := writeFile(t, "http:\n  healthPath: health\n")
	got, out, err = execute(t, "validate", "--config", path,
		"--bootstrap-server-mapping", "kafka-0:9092,127.0.0.1:32400",
		"--bootstrap-server-mapping", "kafka-1:9092,127.0.0.1:32400",
		"--log-format", "xml", "--deterministic-listeners")
	if got != nil || strings.Contains(out, "valid") {
		t.Errorf("invalid: started=%v, output %q", got != nil, out)
	}
	want := "invalid configuration:\n" +
		"  proxy.bootstrapServers[1].listen: local port 32400 is already used by proxy.bootstrapServers[0]\n" +
		"  proxy.dynamicListeners.sequentialMinPort: deterministic listeners need a minimum port (--dynamic-sequential-min-port)\n" +
		"  log.format: \"xml\" is not text or json\n" +
		"  http.healthPath: \"health\" must start with /"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}

	// The server refuses the same configuration before starting.
	if got, _, err := execute(t, "server", "--log-format", "xml"); got != nil || err == nil ||
		!strings.Contains(err.Error(), "proxy.bootstrapServers: at least one mapping is required (--bootstrap-server-mapping)") ||
		!strings.Contains(err.Error(), `log.format: "xml"`) {
		t.Errorf("server with problems: started=%v, %v", got != nil, err)
	}
}

func TestServerRejectsArgs(t *testing.T) {
	if got, _, err := execute(t, "server", "--bootstrap-server-mapping", baseMapping, "extra"); got != nil || err == nil {
		t.Errorf("positional argument accepted: %v", err)
	}
	if _, _, err := execute(t, "server", "--bootstrap-server-mappings", baseMapping); err == nil ||
		!strings.Contains(err.Error(), "unknown flag: --bootstrap-server-mappings") {
		t.Errorf("misspelt flag: %v", err)
	}
}

// TestServerHelp: `server --help` lists every drop-in flag, so operators can
// check a manifest against it.
func TestServerHelp(t *testing.T) {
	_, out, err := execute(t, "server", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{
		"--bootstrap-server-mapping", "--external-server-mapping", "--dynamic-listeners-disable", "--dial-address-mapping", "--forward-proxy",
		"--deterministic-listeners", "--dynamic-sequential-min-port", "--dynamic-sequential-max-ports", "--default-listener-ip",
		"--dynamic-advertised-listener", "--forbidden-api-keys", "--kafka-client-id", "--kafka-dial-timeout",
		"--kafka-read-timeout", "--kafka-write-timeout", "--kafka-keep-alive", "--kafka-max-open-requests",
		"--kafka-connection-read-buffer-size", "--kafka-connection-write-buffer-size",
		"--proxy-listener-keep-alive", "--proxy-listener-read-buffer-size", "--proxy-listener-write-buffer-size",
		"--proxy-request-buffer-size", "--proxy-response-buffer-size", "--producer-acks-0-disabled",
		"--http-listen-address", "--http-health-path", "--http-metrics-path", "--http-disable",
		"--log-format", "--log-level", "--log-level-fieldname", "--log-msg-fieldname", "--log-time-fieldname",
		"--debug-enable", "--debug-listen-address",
		"--config", "--shutdown-drain-timeout", "--http-ready-path",
	} {
		if !strings.Contains(out, "  "+flag+" ") {
			t.Errorf("server --help does not list %s", flag)
		}
	}
	// Defaults are shown, as the drop-in shows them.
	for _, d := range []string{`(default "0.0.0.0:9080")`, "(default 15s)", "(default 4096)", `(default "127.0.0.1")`} {
		if !strings.Contains(out, d) {
			t.Errorf("server --help does not show %s", d)
		}
	}
}

// Combinations the proxy we replace runs (settings without the switch
// that enables them) are valid here too, each named in a warning.
func TestValidateWarnsIgnoredSettings(t *testing.T) {
	_, out, err := execute(t, "validate", "--bootstrap-server-mapping", baseMapping,
		"--tls-ca-chain-cert-file", "/ca.pem", "--sasl-username", "u", "--sasl-password", "p")
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	for _, want := range []string{
		"warning: kafka.tls.caChainCertFile (--tls-ca-chain-cert-file) is ignored: TLS to the brokers is off (--tls-enable)",
		"warning: kafka.sasl.username (--sasl-username) is ignored: SASL to the brokers is off (--sasl-enable)",
		"warning: kafka.sasl.password (--sasl-password) is ignored",
		"configuration is valid",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\"p\"") || strings.Contains(out, " p\n") {
		t.Errorf("validate output shows the password:\n%s", out)
	}
}
