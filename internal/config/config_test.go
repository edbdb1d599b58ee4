package config

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestDefaultMatchesDropIn pins the defaults to those of the widely
// deployed kafka-proxy flags: a manifest that relies on a default must
// behave the same after switching.
func TestDefaultMatchesDropIn(t *testing.T) {
	d := Default()
	cases := []struct {
		name      string
		got, want any
	}{
		{"--bootstrap-server-mapping", d.Proxy.BootstrapServers, []Mapping(nil)},
		{"--external-server-mapping", d.Proxy.ExternalServers, []Mapping(nil)},
		{"--dynamic-listeners-disable", d.Proxy.DynamicListeners.Disable, false},
		{"--deterministic-listeners", d.Proxy.DynamicListeners.Deterministic, false},
		{"--dynamic-sequential-min-port", d.Proxy.DynamicListeners.SequentialMinPort, 0},
		{"--default-listener-ip", d.Proxy.DynamicListeners.DefaultListenerIP, "127.0.0.1"},
		{"--dynamic-advertised-listener", d.Proxy.DynamicListeners.AdvertisedListener, ""},
		{"--forbidden-api-keys", d.Proxy.ForbiddenAPIKeys, []int(nil)},
		{"--producer-acks-0-disabled", d.Proxy.ProducerAcks0Disabled, false},
		{"--proxy-listener-keep-alive", d.Proxy.ListenerKeepAlive, 60 * time.Second},
		{"--proxy-listener-read-buffer-size", d.Proxy.ListenerReadBufferSize, 0},
		{"--proxy-listener-write-buffer-size", d.Proxy.ListenerWriteBufferSize, 0},
		{"--proxy-request-buffer-size", d.Proxy.RequestBufferSize, 4096},
		{"--proxy-response-buffer-size", d.Proxy.ResponseBufferSize, 4096},
		{"--kafka-client-id", d.Kafka.ClientID, "kafka-proxy"},
		{"--kafka-dial-timeout", d.Kafka.DialTimeout, 15 * time.Second},
		{"--kafka-read-timeout", d.Kafka.ReadTimeout, 30 * time.Second},
		{"--kafka-write-timeout", d.Kafka.WriteTimeout, 30 * time.Second},
		{"--kafka-keep-alive", d.Kafka.KeepAlive, 60 * time.Second},
		{"--kafka-max-open-requests", d.Kafka.MaxOpenRequests, 256},
		{"--kafka-connection-read-buffer-size", d.Kafka.ConnectionReadBufferSize, 0},
		{"--kafka-connection-write-buffer-size", d.Kafka.ConnectionWriteBufferSize, 0},
		{"--http-disable", d.HTTP.Disable, false},
		{"--http-listen-address", d.HTTP.ListenAddress, "0.0.0.0:9080"},
		{"--http-health-path", d.HTTP.HealthPath, "/health"},
		{"--http-metrics-path", d.HTTP.MetricsPath, "/metrics"},
		{"--log-format", d.Log.Format, "text"},
		{"--log-level", d.Log.Level, "info"},
		{"--debug-enable", d.Debug.Enable, false},
		{"--debug-listen-address", d.Debug.ListenAddress, "0.0.0.0:6060"},
		// Additions of this proxy.
		{"--http-ready-path", d.HTTP.ReadyPath, "/ready"},
		{"--proxy-max-frame-size", d.Proxy.MaxFrameSize, 100 << 20},
		{"--shutdown-drain-timeout", d.Proxy.DrainTimeout, 30 * time.Second},
	}
	for _, c := range cases {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default of %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	// Default() must hand out fresh values: callers mutate them.
	d.Proxy.ForbiddenAPIKeys = append(d.Proxy.ForbiddenAPIKeys, 20)
	if Default().Proxy.ForbiddenAPIKeys != nil {
		t.Error("Default() shares a slice between calls")
	}
}

func TestParseMapping(t *testing.T) {
	cases := []struct {
		in      string
		want    Mapping
		wantErr string // exact error text; empty means success
	}{
		{in: "kafka-0:9092,127.0.0.1:32400", want: Mapping{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"}},
		{in: "kafka-0:9092,0.0.0.0:32400,proxy.example.com:443",
			want: Mapping{Upstream: "kafka-0:9092", Listen: "0.0.0.0:32400", Advertised: "proxy.example.com:443"}},
		{in: " kafka-0:9092 , 127.0.0.1:32400 ,\tadv:1 ", want: Mapping{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400", Advertised: "adv:1"}},
		{in: "[::1]:9092,:0", want: Mapping{Upstream: "[::1]:9092", Listen: ":0"}},
		{in: "kafka-0:9092", wantErr: `"kafka-0:9092": want remotehost:port,localhost:port[,advhost:advport], got 1 comma-separated parts`},
		{in: "a:1,b:2,c:3,d:4", wantErr: `"a:1,b:2,c:3,d:4": want remotehost:port,localhost:port[,advhost:advport], got 4 comma-separated parts`},
		{in: "", wantErr: `"": want remotehost:port,localhost:port[,advhost:advport], got 1 comma-separated parts`},
		{in: ",127.0.0.1:1", wantErr: `",127.0.0.1:1": remote address is empty (want remotehost:port,localhost:port[,advhost:advport])`},
		{in: "kafka:1, ", wantErr: `"kafka:1, ": local address is empty (want remotehost:port,localhost:port[,advhost:advport])`},
		{in: "kafka:1,127.0.0.1:2,", wantErr: `"kafka:1,127.0.0.1:2,": advertised address is empty (want remotehost:port,localhost:port[,advhost:advport])`},
		{in: "kafka,127.0.0.1:1", wantErr: `"kafka,127.0.0.1:1": remote address: address "kafka": address kafka: missing port in address`},
		{in: "kafka:1,127.0.0.1", wantErr: `"kafka:1,127.0.0.1": local address: address "127.0.0.1": address 127.0.0.1: missing port in address`},
		{in: "kafka:x,127.0.0.1:1", wantErr: `"kafka:x,127.0.0.1:1": remote address: address "kafka:x": port "x" is not a number in 0..65535`},
		{in: "kafka:1,127.0.0.1:65536", wantErr: `"kafka:1,127.0.0.1:65536": local address: address "127.0.0.1:65536": port "65536" is not a number in 0..65535`},
		{in: "kafka:1,127.0.0.1:-1", wantErr: `"kafka:1,127.0.0.1:-1": local address: address "127.0.0.1:-1": port "-1" is not a number in 0..65535`},
		{in: "kafka:0,127.0.0.1:1", wantErr: `"kafka:0,127.0.0.1:1": remote address: address "kafka:0": port 0 cannot be connected to`},
		{in: ":9092,127.0.0.1:1", wantErr: `":9092,127.0.0.1:1": remote address: address ":9092": host is empty`},
		{in: "kafka:1,127.0.0.1:1,adv:0", wantErr: `"kafka:1,127.0.0.1:1,adv:0": advertised address: address "adv:0": port 0 cannot be connected to`},
		{in: "kafka:1,127.0.0.1:1,:5", wantErr: `"kafka:1,127.0.0.1:1,:5": advertised address: address ":5": host is empty`},
	}
	for _, c := range cases {
		got, err := ParseMapping(c.in)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("ParseMapping(%q): %v", c.in, err)
		case c.wantErr != "" && (err == nil || err.Error() != c.wantErr):
			t.Errorf("ParseMapping(%q) error = %v\n want %s", c.in, err, c.wantErr)
		case got != c.want:
			t.Errorf("ParseMapping(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if c.wantErr == "" {
			if back, err := ParseMapping(got.String()); err != nil || back != got {
				t.Errorf("String() of %q does not round-trip: %q -> %+v, %v", c.in, got.String(), back, err)
			}
		}
	}
	if a := (Mapping{Upstream: "k:1", Listen: "l:2"}).AdvertisedAddress(); a != "l:2" {
		t.Errorf("AdvertisedAddress without advertised = %q", a)
	}
	if a := (Mapping{Upstream: "k:1", Listen: "l:2", Advertised: "a:3"}).AdvertisedAddress(); a != "a:3" {
		t.Errorf("AdvertisedAddress = %q", a)
	}
}

func validConfig() Config {
	c := Default()
	c.Proxy.BootstrapServers = []Mapping{{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"}}
	return c
}

func TestValidateValid(t *testing.T) {
	c := validConfig()
	c.Proxy.BootstrapServers = append(c.Proxy.BootstrapServers,
		Mapping{Upstream: "kafka-1:9092", Listen: "127.0.0.1:0"},
		Mapping{Upstream: "kafka-2:9092", Listen: "127.0.0.1:0"}, // port 0 twice is fine: the kernel picks
		Mapping{Upstream: "kafka-3:9092", Listen: "0.0.0.0:32403", Advertised: "proxy:443"})
	c.Proxy.ExternalServers = []Mapping{{Upstream: "kafka-4:9092", Listen: "other-proxy:32404"}}
	c.Proxy.DynamicListeners = DynamicListeners{Deterministic: true, SequentialMinPort: 32500, DefaultListenerIP: "0.0.0.0", AdvertisedListener: "proxy"}
	c.Log.Level = "warning" // the drop-in spelling
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Deterministic without a minimum port is fine when dynamic listeners
	// are off: the port is never used.
	c.Proxy.DynamicListeners = DynamicListeners{Disable: true, Deterministic: true, DefaultListenerIP: "127.0.0.1"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// A disabled endpoint's settings are not checked.
	c.HTTP = HTTP{Disable: true}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateEmptyBootstrap(t *testing.T) {
	c := Default()
	want := Problems{"proxy.bootstrapServers: at least one mapping is required (--bootstrap-server-mapping)"}
	var got Problems
	if err := c.Validate(); !errors.As(err, &got) || !slices.Equal(got, want) {
		t.Fatalf("Validate() = %v, want %q", err, want)
	}
}

// TestValidateListsEveryProblem breaks many settings at once: one start-up
// attempt must tell the operator everything, each with its YAML path, in
// a stable order.
func TestValidateListsEveryProblem(t *testing.T) {
	c := Default()
	c.Proxy.BootstrapServers = []Mapping{
		{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"},
		{Upstream: "KAFKA-0:9092", Listen: "0.0.0.0:32400"},
		{Upstream: "kafka-2:0", Listen: "nope", Advertised: ":1"},
		{Upstream: "", Listen: ""},
	}
	c.Proxy.ExternalServers = []Mapping{{Upstream: "kafka-0:9092", Listen: "127.0.0.1:0"}}
	c.Proxy.DynamicListeners = DynamicListeners{Deterministic: true}
	c.Proxy.ForbiddenAPIKeys = []int{20, -1, 40000}
	c.Proxy.RequestBufferSize = 0
	c.Proxy.ResponseBufferSize = -1
	c.Proxy.MaxFrameSize = 10
	c.Proxy.ListenerReadBufferSize = -1
	c.Proxy.DrainTimeout = -time.Second
	c.Kafka.DialTimeout = 0
	c.Kafka.ReadTimeout = -1
	c.Kafka.MaxOpenRequests = 0
	c.Kafka.ConnectionWriteBufferSize = -2
	c.Kafka.IdentityRequired = true
	c.Log = Log{Format: "xml", Level: "loud"}
	c.HTTP = HTTP{ListenAddress: "9080", HealthPath: "health", ReadyPath: "/ready", MetricsPath: "/ready"}
	c.Debug = Debug{Enable: true, ListenAddress: ""}
	c.Kafka.ReauthMinLifetime = -1

	want := Problems{
		`proxy.bootstrapServers[1].listen: local port 32400 is already used by proxy.bootstrapServers[0]`,
		`proxy.bootstrapServers[1].upstream: broker KAFKA-0:9092 is already mapped by proxy.bootstrapServers[0]`,
		`proxy.bootstrapServers[2].upstream: address "kafka-2:0": port 0 cannot be connected to`,
		`proxy.bootstrapServers[2].listen: address "nope": address nope: missing port in address`,
		`proxy.bootstrapServers[2].advertised: address ":1": host is empty`,
		`proxy.bootstrapServers[3].upstream: must not be empty`,
		`proxy.bootstrapServers[3].listen: must not be empty`,
		`proxy.externalServers[0].listen: address "127.0.0.1:0": port 0 cannot be connected to`,
		`proxy.externalServers[0].upstream: broker kafka-0:9092 is already mapped by proxy.bootstrapServers[0]`,
		`proxy.dynamicListeners.sequentialMinPort: deterministic listeners need a minimum port (--dynamic-sequential-min-port)`,
		`proxy.dynamicListeners.defaultListenerIp: must not be empty`,
		`proxy.forbiddenApiKeys[1]: -1 is not an API key`,
		`proxy.forbiddenApiKeys[2]: 40000 is not an API key`,
		`proxy.requestBufferSize: 0 must be positive`,
		`proxy.responseBufferSize: -1 must be positive`,
		`proxy.maxFrameSize: 10 is too small (at least 1024 bytes)`,
		`proxy.listenerReadBufferSize: -1 must not be negative`,
		`proxy.drainTimeout: must not be negative`,
		`kafka.dialTimeout: must be positive`,
		`kafka.readTimeout: must not be negative`,
		`kafka.maxOpenRequests: 0 must be positive`,
		`kafka.connectionWriteBufferSize: -2 must not be negative`,
		`kafka.identityRequired: needs an identity file (--upstream-identity-file)`,
		`log.format: "xml" is not text or json`,
		`log.level: "loud" is not one of debug, info, warn, error`,
		`http.listenAddress: address "9080": address 9080: missing port in address`,
		`http.healthPath: "health" must start with /`,
		`http.metricsPath: "/ready" is already used by http.readyPath`,
		`debug.listenAddress: must not be empty`,
		`kafka.reauthMinLifetime: must not be negative`,
	}
	err := c.Validate()
	var got Problems
	if !errors.As(err, &got) {
		t.Fatalf("Validate() = %v, want Problems", err)
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("problem %d:\n got %s\nwant %s", i, g, w)
		}
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "invalid configuration:\n  proxy.bootstrapServers[1].listen: ") ||
		strings.Count(msg, "\n  ") != len(want) {
		t.Errorf("Error() = %q, want one indented line per problem", msg)
	}
}

func TestValidateHTTPPaths(t *testing.T) {
	for _, tc := range []struct {
		edit func(*HTTP)
		want string
	}{
		{func(h *HTTP) { h.HealthPath = "/metrics" }, `http.metricsPath: "/metrics" is already used by http.healthPath`},
		{func(h *HTTP) { h.ReadyPath = "/health" }, `http.readyPath: "/health" is already used by http.healthPath`},
		{func(h *HTTP) { h.ReadyPath = "/ready now" }, `http.readyPath: "/ready now" must be a plain path (no spaces, query or fragment)`},
		{func(h *HTTP) { h.MetricsPath = "/metrics?x=1" }, `http.metricsPath: "/metrics?x=1" must be a plain path (no spaces, query or fragment)`},
		{func(h *HTTP) { h.HealthPath = "" }, `http.healthPath: "" must start with /`},
	} {
		c := validConfig()
		tc.edit(&c.HTTP)
		var got Problems
		if err := c.Validate(); !errors.As(err, &got) || !slices.Equal(got, Problems{tc.want}) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

func TestDecode(t *testing.T) {
	c := Default()
	err := Decode([]byte(`
proxy:
  bootstrapServers:
    - {upstream: "kafka-0:9092", listen: "127.0.0.1:32400"}
    - upstream: kafka-1:9092
      listen: 127.0.0.1:32401
      advertised: proxy:443
  forbiddenApiKeys: [20, 21]
  drainTimeout: 1m30s
kafka:
  dialTimeout: 15s
  readTimeout: 250ms
http:
  listenAddress: 127.0.0.1:9999
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Proxy.BootstrapServers = []Mapping{{"kafka-0:9092", "127.0.0.1:32400", ""}, {"kafka-1:9092", "127.0.0.1:32401", "proxy:443"}}
	want.Proxy.ForbiddenAPIKeys = []int{20, 21}
	want.Proxy.DrainTimeout = 90 * time.Second
	want.Kafka.ReadTimeout = 250 * time.Millisecond
	want.HTTP.ListenAddress = "127.0.0.1:9999"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", c, want)
	}

	// Nothing at all keeps every default.
	for _, empty := range []string{"", "# only a comment\n", "---\n"} {
		c := Default()
		if err := Decode([]byte(empty), &c); err != nil || !reflect.DeepEqual(c, Default()) {
			t.Errorf("Decode(%q) = %v, %+v", empty, err, c)
		}
	}
}

// TestDecodeUnknownKeys: a typo must fail, every one of them at once, with
// the YAML path and line of the key.
func TestDecodeUnknownKeys(t *testing.T) {
	c := Default()
	err := Decode([]byte(`proxy:
  bootstrapServers:
    - upstream: kafka-0:9092
      lisen: 127.0.0.1:32400
  dynamicListeners: {disabled: true}
kafak:
  clientId: x
`), &c)
	want := Problems{
		`proxy.bootstrapServers[0].lisen (line 4): unknown key "lisen"; known keys here: upstream, listen, advertised`,
		`proxy.dynamicListeners.disabled (line 5): unknown key "disabled"; known keys here: disable, deterministic, sequentialMinPort, sequentialMaxPorts, defaultListenerIp, advertisedListener`,
		`kafak (line 6): unknown key "kafak"; known keys here: proxy, kafka, auth, acl, audit, http, log, debug`,
	}
	var got Problems
	if !errors.As(err, &got) || !slices.Equal(got, want) {
		t.Fatalf("Decode error = %v\nwant %q", err, want)
	}

	// Keys merged in from an anchor are checked too.
	err = Decode([]byte("x: &m {upstream: \"k:1\", lissen: \"l:2\"}\n"), &c)
	if err == nil || !strings.Contains(err.Error(), `x (line 1): unknown key "x"`) {
		t.Errorf("anchor at top level: %v", err)
	}
	err = Decode([]byte("http: &h {disable: true}\ndebug:\n  <<: *h\n"), &c)
	if err == nil || !strings.Contains(err.Error(), `debug.disable (line 1): unknown key "disable"`) {
		t.Errorf("merged unknown key: %v", err)
	}
}

// TestDecodeTypeErrors: a value of the wrong type names its YAML path.
// Durations must carry a unit: a bare 30 would be 30 nanoseconds.
func TestDecodeTypeErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"kafka:\n  dialTimeout: soon\n", "kafka.dialTimeout (line 2): cannot unmarshal !!str `soon` into time.Duration"},
		{"kafka:\n  dialTimeout: 30\n", "kafka.dialTimeout (line 2): cannot unmarshal !!int `30` into time.Duration"},
		{"proxy:\n  requestBufferSize: big\n", "proxy.requestBufferSize (line 2): cannot unmarshal !!str `big` into int"},
		{"proxy:\n  bootstrapServers: kafka:9092\n", "proxy.bootstrapServers (line 2): cannot unmarshal !!str `kafka:9092` into []config.Mapping"},
		{"proxy:\n  forbiddenApiKeys:\n    - 20\n    - x\n", "proxy.forbiddenApiKeys[1] (line 4): cannot unmarshal !!str `x` into int"},
		// Two values on one line: the path of what they share.
		{"proxy:\n  forbiddenApiKeys: [20, x]\n", "proxy.forbiddenApiKeys (line 2): cannot unmarshal !!str `x` into int"},
		{"http:\n  disable: nope\n", "http.disable (line 2): cannot unmarshal !!str `nope` into bool"},
		{"log:\n  level: info\n  level: debug\n", `log.level (line 3): mapping key "level" already defined at line 2`},
	}
	for _, c := range cases {
		cfg := Default()
		err := Decode([]byte(c.yaml), &cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%q) = %v\nwant %s", c.yaml, err, c.want)
		}
	}
	cfg := Default()
	if err := Decode([]byte("log: {level: info}\n---\nlog: {level: debug}\n"), &cfg); err == nil ||
		err.Error() != "line 2: a second YAML document; the configuration is one document" {
		t.Errorf("second document: %v", err)
	}
	if err := Decode([]byte("proxy: [\n"), &cfg); err == nil || !strings.Contains(err.Error(), "line") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/proxy.yaml"
	if err := os.WriteFile(path, []byte("proxy:\n  nope: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), "config "+path+": invalid configuration:\n  proxy.nope (line 2): unknown key") {
		t.Errorf("Load = %v", err)
	}
	if _, err := Load(dir + "/missing.yaml"); !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "read config: ") {
		t.Errorf("Load(missing) = %v", err)
	}
}

// TestExampleConfig keeps docs/config.example.yaml true: it loads, it
// validates, and every value it shows is the default, except the mappings
// and forbidden keys it shows as examples (an operator copies the file and
// expects the rest to change nothing).
func TestExampleConfig(t *testing.T) {
	const path = "../../docs/config.example.yaml"
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Proxy.BootstrapServers) != 2 || !slices.Equal(c.Proxy.ForbiddenAPIKeys, []int{20}) {
		t.Errorf("example mappings %v, forbidden keys %v", c.Proxy.BootstrapServers, c.Proxy.ForbiddenAPIKeys)
	}

	// Decode over zero values to see exactly what the file says.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var said Config
	if err := Decode(data, &said); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Proxy.BootstrapServers, want.Proxy.ForbiddenAPIKeys = said.Proxy.BootstrapServers, said.Proxy.ForbiddenAPIKeys
	if said.Proxy.ExternalServers == nil { // "[]" decodes to an empty slice
		want.Proxy.ExternalServers = nil
	} else {
		want.Proxy.ExternalServers = []Mapping{}
	}
	// Sections the example leaves out.
	said.Kafka.TLS, said.Kafka.SASL, said.Kafka.ReauthMinLifetime = want.Kafka.TLS, want.Kafka.SASL, want.Kafka.ReauthMinLifetime
	said.Debug = want.Debug
	for _, s := range []struct {
		name      string
		got, want any
	}{
		{"proxy", said.Proxy, want.Proxy}, {"kafka", said.Kafka, want.Kafka},
		{"http", said.HTTP, want.HTTP}, {"log", said.Log, want.Log},
	} {
		if !reflect.DeepEqual(s.got, s.want) {
			t.Errorf("example %s section differs from the defaults:\n got %+v\nwant %+v", s.name, s.got, s.want)
		}
	}
}

// TestUnknownKeysFollowYAMLTags: the unknown-key check must agree with
// yaml.v3 on which keys exist, or it would reject valid files (inline
// structs, untagged fields) or accept ignored ones ("-").
func TestUnknownKeysFollowYAMLTags(t *testing.T) {
	type inner struct {
		Shared string `yaml:"shared"`
	}
	type outer struct {
		inner   `yaml:",inline"`
		Plain   int
		Ignored int    `yaml:"-"`
		Named   string `yaml:"named,omitempty"`
	}
	check := func(src string) Problems {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		w := &walker{lines: map[int]string{}}
		w.walk(&doc, reflect.TypeFor[outer](), "", "")
		return w.problems
	}
	if p := check("shared: a\nplain: 1\nnamed: b\n"); len(p) != 0 {
		t.Errorf("valid keys rejected: %q", p)
	}
	want := Problems{`ignored (line 1): unknown key "ignored"; known keys here: shared, plain, named`}
	if p := check("ignored: 1\n"); !slices.Equal(p, want) {
		t.Errorf("got %q, want %q", p, want)
	}
}

// TestMarshalRoundTrip: every key of a marshalled Config is accepted and
// decodes back to the same values, so the unknown-key check knows every
// section, including ones added later.
func TestMarshalRoundTrip(t *testing.T) {
	c := validConfig()
	c.Proxy.BootstrapServers = append(c.Proxy.BootstrapServers, Mapping{Upstream: "k:1", Listen: "l:2", Advertised: "a:3"})
	c.Proxy.ForbiddenAPIKeys = []int{20}
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := Decode(data, &back); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	// Compared as YAML: nil and empty lists both marshal to [].
	again, err := yaml.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) {
		t.Errorf("round trip:\n%s\nwant\n%s", again, data)
	}
}

// The client-facing TLS settings take the names kafka.tls takes, and a
// bad cipher suite is found by validate, not first by the server.
func TestValidateListenerTLSNames(t *testing.T) {
	c := Default()
	c.Proxy.BootstrapServers = []Mapping{{Upstream: "kafka-1:9092", Listen: "127.0.0.1:0"}}
	c.Proxy.TLS = ListenerTLS{Enable: true, CertFile: "c.pem", KeyFile: "k.pem", MinVersion: "TLSv1.2",
		CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Proxy.TLS.MinVersion, c.Proxy.TLS.CipherSuites = "1.1", []string{"TLS_NO_SUCH_SUITE"}
	var got Problems
	if err := c.Validate(); !errors.As(err, &got) || len(got) != 2 ||
		!strings.HasPrefix(got[0], "proxy.tls.minVersion: ") || !strings.HasPrefix(got[1], "proxy.tls.cipherSuites: ") {
		t.Fatalf("Validate() = %v, want a minVersion and a cipherSuites problem", err)
	}
	c.Proxy.TLS.MinVersion, c.Proxy.TLS.CipherSuites = "", nil
	c.Proxy.TLS.PrincipalMappingRules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Proxy.TLS.PrincipalMappingRules = "RULE:^CN=(.*?)$/$1/LU"
	if err := c.Validate(); !errors.As(err, &got) || len(got) != 1 || !strings.HasPrefix(got[0], "proxy.tls.principalMappingRules: ") {
		t.Fatalf("Validate() = %v, want a principalMappingRules problem", err)
	}
}

// TestValidateSNI: SNI routing needs TLS on the listener, both names and a
// free port; its settings without a listen address are a mistake.
func TestValidateSNI(t *testing.T) {
	base := func() Config {
		c := Default()
		c.Proxy.BootstrapServers = []Mapping{{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"}}
		return c
	}
	good := base()
	good.Proxy.TLS = ListenerTLS{Enable: true, CertFile: "c.pem", KeyFile: "k.pem"}
	good.Proxy.SNI = SNI{ListenAddress: "0.0.0.0:9443", BootstrapHost: "bootstrap.kafka.test", BrokerHostPattern: "broker-$(nodeId).kafka.test", AdvertisedPort: 443}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid SNI configuration: %v", err)
	}
	cases := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Proxy.TLS.Enable = false }, "proxy.sni.listenAddress: SNI routing needs TLS"},
		{func(c *Config) { c.Proxy.SNI.BootstrapHost = "" }, "proxy.sni.bootstrapHost: required"},
		{func(c *Config) { c.Proxy.SNI.BrokerHostPattern = "" }, "proxy.sni.brokerHostPattern: required"},
		{func(c *Config) { c.Proxy.SNI.BrokerHostPattern = "broker.kafka.test" }, "must contain $(nodeId) exactly once"},
		{func(c *Config) { c.Proxy.SNI.AdvertisedPort = 70000 }, "proxy.sni.advertisedPort: 70000 is not a port"},
		{func(c *Config) { c.Proxy.SNI.ListenAddress = "127.0.0.1:32400" }, "local port 32400 is already used by proxy.bootstrapServers[0]"},
		{func(c *Config) { c.Proxy.SNI.ListenAddress = "" }, "proxy.sni.listenAddress: required with the other SNI settings"},
	}
	for _, tc := range cases {
		c := good
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}

// TestValidateBuiltinTokenSides: a built-in token checker cannot provide
// tokens, nor a provider check them.
func TestValidateBuiltinTokenSides(t *testing.T) {
	c := Default()
	c.Proxy.BootstrapServers = []Mapping{{Upstream: "kafka-0:9092", Listen: "127.0.0.1:32400"}}
	c.Kafka.Gateway = Gateway{Enable: true, Command: "google-id-info", Method: "google-id", Timeout: time.Second}
	c.Proxy.Gateway = Gateway{Enable: true, Command: "oidc-provider", Method: "google-id", Timeout: time.Second}
	c.Kafka.SASL.Plugin = TokenPlugin{Enable: true, Command: "google-id-info"}
	err := c.Validate()
	for _, want := range []string{
		`kafka.gateway.command: "google-id-info" is the built-in token checker; this side needs a token provider`,
		`proxy.gateway.command: "oidc-provider" is the built-in token provider; this side needs a token checker`,
		`kafka.sasl.plugin.command: "google-id-info" checks tokens`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
