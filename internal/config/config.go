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
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of one kafka-proxy process.
type Config struct {
	Proxy Proxy `yaml:"proxy"`
	Kafka Kafka `yaml:"kafka"`
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
	// ProducerAcks0Disabled rejects acks=0 Produce requests (closing the
	// connection, since such a request has no response to carry an error).
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
	// DrainTimeout bounds how long shutdown waits for in-flight requests.
	DrainTimeout time.Duration `yaml:"drainTimeout"`
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
	// DefaultListenerIP is the IP dynamic listeners bind to.
	DefaultListenerIP string `yaml:"defaultListenerIp"`
	// AdvertisedListener, if set, is the host advertised for dynamic
	// listeners instead of DefaultListenerIP.
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
	// ReauthMinLifetime is the shortest broker SASL session worth renewing
	// (KIP-368); a shorter one closes the connection after in-flight
	// responses so the client reconnects.
	ReauthMinLifetime time.Duration `yaml:"reauthMinLifetime"`
	TLS               TLS           `yaml:"tls"`
	SASL              SASL          `yaml:"sasl"`
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
		},
		HTTP: HTTP{
			ListenAddress: "0.0.0.0:9080",
			HealthPath:    "/health",
			ReadyPath:     "/ready",
			MetricsPath:   "/metrics",
		},
		Log:   Log{Format: "text", Level: "info"},
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
func Decode(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
