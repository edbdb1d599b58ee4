// Package config holds the one Config type of kafka-proxy. Every setting can
// come from a YAML file and from the drop-in command-line flags; the CLI maps
// flags onto this type, so there is exactly one place that says what a
// setting means and what its default is.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of one kafka-proxy process.
type Config struct {
	Proxy Proxy `yaml:"proxy"`
	Kafka Kafka `yaml:"kafka"`
	Auth  Auth  `yaml:"auth"`
	ACL   ACL   `yaml:"acl"`
	Audit Audit `yaml:"audit"`
	HTTP  HTTP  `yaml:"http"`
	Log   Log   `yaml:"log"`
	Debug Debug `yaml:"debug"`
}

// Proxy is the client-facing side: listeners and what passes through them.
type Proxy struct {
	// BootstrapServers maps broker addresses to local listeners that are
	// started at once.
	BootstrapServers []Mapping `yaml:"bootstrapServers"`
	// ExternalServers maps broker addresses to addresses served by
	// something else (another proxy, a load balancer): no listener is
	// started, the address is only advertised.
	ExternalServers  []Mapping        `yaml:"externalServers"`
	DynamicListeners DynamicListeners `yaml:"dynamicListeners"`
	// ForbiddenAPIKeys are request keys answered locally with an error
	// instead of being forwarded.
	ForbiddenAPIKeys []int `yaml:"forbiddenApiKeys"`
	// ProducerAcks0Disabled is accepted for compatibility and changes
	// nothing: in the proxy we replace it is a performance hint (assume no
	// producer sends acks=0); here acks=0 produce requests are always
	// relayed, and the server logs so once at start.
	ProducerAcks0Disabled bool `yaml:"producerAcks0Disabled"`

	ListenerKeepAlive       time.Duration `yaml:"listenerKeepAlive"`
	ListenerReadBufferSize  int           `yaml:"listenerReadBufferSize"`
	ListenerWriteBufferSize int           `yaml:"listenerWriteBufferSize"`
	// RequestBufferSize and ResponseBufferSize size the per-connection
	// buffers that hold frame headers; bodies stream past them.
	RequestBufferSize  int `yaml:"requestBufferSize"`
	ResponseBufferSize int `yaml:"responseBufferSize"`
	// MaxFrameSize bounds a request or response frame; a larger size
	// prefix closes the connection before anything is allocated.
	MaxFrameSize int `yaml:"maxFrameSize"`
	// TLS secures the client-facing listeners.
	TLS ListenerTLS `yaml:"tls"`
	// Admission refuses connections by address and count.
	Admission Admission `yaml:"admission"`
	// DrainTimeout bounds how long shutdown waits for in-flight requests.
	DrainTimeout time.Duration `yaml:"drainTimeout"`
	// Gateway, when enabled, admits only client-side proxies that pass
	// the gateway handshake (--auth-gateway-server-*).
	Gateway Gateway `yaml:"gateway"`
	// SNI, when it has a listen address, serves every broker through one
	// TLS listener, routed by the name each client asks for.
	SNI SNI `yaml:"sni"`
}

// DynamicListeners controls listeners started for brokers that were not
// mapped but are discovered in Metadata and similar responses.
type DynamicListeners struct {
	Disable bool `yaml:"disable"`
	// Deterministic gives broker N the port SequentialMinPort+N, so
	// addresses survive restarts.
	Deterministic bool `yaml:"deterministic"`
	// SequentialMinPort, when set without Deterministic, hands out ports
	// sequentially from this value instead of random ports.
	SequentialMinPort int `yaml:"sequentialMinPort"`
	// SequentialMaxPorts, if set, keeps dynamic ports (sequential and
	// deterministic) within [SequentialMinPort, SequentialMinPort+SequentialMaxPorts):
	// the offset wraps around, as in the proxy we replace.
	SequentialMaxPorts int `yaml:"sequentialMaxPorts"`
	// DefaultListenerIP is the IP dynamic listeners bind to.
	DefaultListenerIP string `yaml:"defaultListenerIp"`
	// AdvertisedListener, if set, is what dynamic listeners advertise
	// instead of DefaultListenerIP: a host with an optional fixed port,
	// {{.brokerId}} standing for the node id (AdvertisedTemplate).
	AdvertisedListener string `yaml:"advertisedListener"`
}

// Kafka is the broker-facing side.
type Kafka struct {
	ClientID                  string        `yaml:"clientId"`
	DialTimeout               time.Duration `yaml:"dialTimeout"`
	ReadTimeout               time.Duration `yaml:"readTimeout"`
	WriteTimeout              time.Duration `yaml:"writeTimeout"`
	KeepAlive                 time.Duration `yaml:"keepAlive"`
	MaxOpenRequests           int           `yaml:"maxOpenRequests"`
	ConnectionReadBufferSize  int           `yaml:"connectionReadBufferSize"`
	ConnectionWriteBufferSize int           `yaml:"connectionWriteBufferSize"`
	// ReauthMinLifetime is the shortest interval between re-authentications
	// (KIP-368) of one broker connection. A broker session shorter than it
	// is still renewed before it expires, at 85–90% of its lifetime: no
	// connection is closed for a short session.
	ReauthMinLifetime time.Duration `yaml:"reauthMinLifetime"`
	// ForwardProxy, if set, carries every broker connection: a SOCKS5
	// (socks5://[user:pass@]host:port) or HTTP CONNECT
	// (http://[user:pass@]host:port) proxy.
	ForwardProxy string `yaml:"forwardProxy"`
	// DialAddressMappings send the dial for a broker to another address.
	DialAddressMappings []DialMapping `yaml:"dialAddressMappings"`
	TLS                 TLS           `yaml:"tls"`
	SASL                SASL          `yaml:"sasl"`
	// IdentityFile maps client principals to their own SASL user or
	// client certificate towards the brokers (--upstream-identity-file);
	// principals it does not map use TLS and SASL above.
	IdentityFile string `yaml:"identityFile"`
	// IdentityRequired refuses clients the identity file does not map.
	IdentityRequired bool `yaml:"identityRequired"`
	// Gateway, when enabled, opens every broker connection with the
	// gateway handshake towards a server-side proxy
	// (--auth-gateway-client-*), after TLS and before SASL.
	Gateway Gateway `yaml:"gateway"`
}

// HTTP is the admin endpoint: health, readiness and metrics.
type HTTP struct {
	Disable       bool   `yaml:"disable"`
	ListenAddress string `yaml:"listenAddress"`
	HealthPath    string `yaml:"healthPath"`
	ReadyPath     string `yaml:"readyPath"`
	MetricsPath   string `yaml:"metricsPath"`
}

// Log configures the process logger.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
	// The JSON field names of time, level and message, as the proxy we
	// replace names them (--log-*-fieldname).
	TimeFieldName  string `yaml:"timeFieldName"`
	LevelFieldName string `yaml:"levelFieldName"`
	MsgFieldName   string `yaml:"msgFieldName"`
}

// Debug exposes net/http/pprof on its own address when enabled.
type Debug struct {
	Enable        bool   `yaml:"enable"`
	ListenAddress string `yaml:"listenAddress"`
}

// Default returns the configuration used when nothing is set; the values
// match the widely deployed kafka-proxy flags.
func Default() Config {
	return Config{
		Proxy: Proxy{
			DynamicListeners:   DynamicListeners{DefaultListenerIP: "127.0.0.1"},
			ListenerKeepAlive:  time.Minute,
			RequestBufferSize:  4096,
			ResponseBufferSize: 4096,
			MaxFrameSize:       100 << 20,
			DrainTimeout:       30 * time.Second,
			Gateway:            defaultGateway(),
		},
		Kafka: Kafka{
			ClientID:          "kafka-proxy",
			DialTimeout:       15 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			KeepAlive:         time.Minute,
			MaxOpenRequests:   256,
			ReauthMinLifetime: 5 * time.Second,
			TLS:               defaultTLS(),
			SASL:              defaultSASL(),
			Gateway:           defaultGateway(),
		},
		Auth: Auth{Local: LocalAuth{Mechanisms: []string{LocalPlain},
			JWT:    LocalJWT{PrincipalClaim: "sub", ClockSkew: 30 * time.Second, JWKSRefresh: time.Hour},
			LDAP:   LocalLDAP{UserAttr: "uid", StartTLS: true},
			Plugin: LocalPlugin{Timeout: 10 * time.Second, LogLevel: "trace"}}},
		ACL: ACL{Refresh: 10 * time.Second},
		HTTP: HTTP{
			ListenAddress: "0.0.0.0:9080",
			HealthPath:    "/health",
			ReadyPath:     "/ready",
			MetricsPath:   "/metrics",
		},
		Log:   Log{Format: "text", Level: "info", TimeFieldName: "@timestamp", LevelFieldName: "@level", MsgFieldName: "@message"},
		Debug: Debug{ListenAddress: "0.0.0.0:6060"},
	}
}

// Load reads a YAML file over the defaults. Unknown keys are an error, so a
// typo cannot silently fall back to a default.
func Load(path string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := Decode(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Decode strictly decodes YAML into cfg, keeping values the YAML omits.
// Every unknown key is reported at once with its YAML path and line (a typo
// must not silently fall back to a default), and type errors name the path
// of the value, not only its line. A second YAML document is an error
// rather than being ignored.
func Decode(data []byte, cfg *Config) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // empty or comments only
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return fmt.Errorf("line %d: a second YAML document; the configuration is one document", extra.Line)
	}
	w := &walker{lines: map[int]string{}}
	w.walk(&doc, reflect.TypeFor[Config](), "", "")
	if len(w.problems) > 0 {
		return w.problems
	}
	if err := doc.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return err
		}
		p := make(Problems, 0, len(te.Errors))
		for _, e := range te.Errors {
			p = append(p, w.withPath(e))
		}
		return p
	}
	return nil
}

// walker checks a YAML tree against the Config type. It exists because
// yaml.v3 names only the Go type of an unknown key ("field x not found in
// type config.Proxy"), while an operator needs the path to the key.
type walker struct {
	problems Problems
	lines    map[int]string // line -> path of the value there, for type errors
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path, parent string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(c, t, path, parent)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" { // "<<: *a" or "<<: [*a, *b]" merges keys in here
				merged := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode {
					merged = v.Content
				}
				for _, m := range merged {
					w.walk(m, t, path, parent)
				}
				continue
			}
			child := join(path, k.Value)
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				w.problems = append(w.problems, fmt.Sprintf("%s (line %d): unknown key %q; known keys here: %s", child, k.Line, k.Value, strings.Join(yamlKeys(t), ", ")))
				continue
			}
			w.walk(v, f.Type, child, path)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), path)
		}
	default: // a leaf, or a shape the decoder will reject with a line
		w.line(n.Line, path, parent)
	}
}

// line remembers which path a line holds. Two values on one line (a flow
// sequence or mapping) are told apart by the parent they share.
func (w *walker) line(line int, path, parent string) {
	if prev, ok := w.lines[line]; ok && prev != path {
		path = parent
	}
	w.lines[line] = path
}

// withPath turns yaml's "line N: msg" into "path (line N): msg".
func (w *walker) withPath(e string) string {
	var line int
	if _, err := fmt.Sscanf(e, "line %d:", &line); err != nil {
		return e
	}
	if path := w.lines[line]; path != "" {
		return fmt.Sprintf("%s (line %d):%s", path, line, strings.SplitN(e, ":", 2)[1])
	}
	return e
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldByTag finds the field of struct t whose yaml name is key, looking
// into ",inline" structs as yaml.v3 does.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range yamlFields(t) {
		if yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for _, f := range yamlFields(t) {
		keys = append(keys, yamlName(f))
	}
	return keys
}

// yamlFields lists the fields yaml.v3 maps to keys of struct t.
func yamlFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		switch {
		case (!f.IsExported() && !f.Anonymous) || tag == "-":
		case strings.Contains(tag, ",inline") && f.Type.Kind() == reflect.Struct:
			out = append(out, yamlFields(f.Type)...)
		default:
			out = append(out, f)
		}
	}
	return out
}

// yamlName is the key yaml.v3 uses for f: the tag name, else the lower-cased
// field name.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}
