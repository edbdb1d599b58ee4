package config

import (
	"fmt"
	"strings"
)

// Problems is every configuration problem found, each naming its YAML path.
type Problems []string

func (p Problems) Error() string {
	return "invalid configuration:\n  " + strings.Join(p, "\n  ")
}

func (p *Problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

// Warnings lists settings that a valid configuration ignores, for the
// log at start and for `validate`.
func (c *Config) Warnings() []string {
	return c.upstreamWarnings()
}

// Validate lists every problem in cfg at once (not just the first), so one
// start-up attempt tells the operator everything to fix. The error is a
// Problems value.
func (c *Config) Validate() error {
	var p Problems
	c.validateProxy(&p)
	c.validateKafka(&p)
	switch c.Log.Format {
	case "text", "json":
	default:
		p.add("log.format", "%q is not text or json", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error", "fatal", "panic", "trace":
	default:
		p.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !c.HTTP.Disable {
		checkAddr(&p, "http.listenAddress", c.HTTP.ListenAddress)
		c.validateHTTPPaths(&p)
	}
	if c.Debug.Enable {
		checkAddr(&p, "debug.listenAddress", c.Debug.ListenAddress)
	}
	c.validateUpstream(&p)
	validateGateway(&p, "kafka.gateway.", c.Kafka.Gateway)
	validateGateway(&p, "proxy.gateway.", c.Proxy.Gateway)
	c.validateListenerTLS(&p)
	c.validateSNI(&p)
	c.validateLocalAuth(&p)
	c.validateACL(&p)
	c.validateAdmission(&p)
	if len(p) == 0 {
		return nil
	}
	return p
}

func (c *Config) validateProxy(p *Problems) {
	px := &c.Proxy
	if len(px.BootstrapServers) == 0 {
		p.add("proxy.bootstrapServers", "at least one mapping is required (--bootstrap-server-mapping)")
	}
	listens := map[int]string{}
	upstreams := map[string]string{}
	// upstream records a broker's first mapping; the topology looks brokers
	// up case-insensitively, so "Kafka-0:9092" and "kafka-0:9092" are the
	// same broker and a second mapping would silently replace the first.
	upstream := func(path, addr string) {
		key := strings.ToLower(addr)
		if other, dup := upstreams[key]; dup && addr != "" {
			p.add(path+".upstream", "broker %s is already mapped by %s", addr, other)
			return
		}
		upstreams[key] = path
	}
	for i, m := range px.BootstrapServers {
		path := fmt.Sprintf("proxy.bootstrapServers[%d]", i)
		checkDialAddr(p, path+".upstream", m.Upstream)
		checkAddr(p, path+".listen", m.Listen)
		if m.Advertised != "" {
			checkDialAddr(p, path+".advertised", m.Advertised)
		}
		// Keyed on the port alone: 0.0.0.0:N and 127.0.0.1:N cannot both
		// be bound, and two hosts sharing a port is almost always a typo.
		if _, port, err := SplitHostPort(m.Listen); err == nil && port != 0 {
			if other, dup := listens[port]; dup {
				p.add(path+".listen", "local port %d is already used by %s", port, other)
			} else {
				listens[port] = path
			}
		}
		upstream(path, m.Upstream)
	}
	for i, m := range px.ExternalServers {
		path := fmt.Sprintf("proxy.externalServers[%d]", i)
		checkDialAddr(p, path+".upstream", m.Upstream)
		// No listener is started: the "listen" address is only advertised,
		// so it must be one a client can connect to.
		checkDialAddr(p, path+".listen", m.Listen)
		if m.Advertised != "" {
			checkDialAddr(p, path+".advertised", m.Advertised)
		}
		upstream(path, m.Upstream)
	}
	dl := &px.DynamicListeners
	if dl.SequentialMinPort < 0 || dl.SequentialMinPort > 65535 {
		p.add("proxy.dynamicListeners.sequentialMinPort", "%d is not a port", dl.SequentialMinPort)
	}
	if dl.SequentialMaxPorts < 0 || dl.SequentialMaxPorts > 0 && dl.SequentialMinPort+dl.SequentialMaxPorts-1 > 65535 {
		p.add("proxy.dynamicListeners.sequentialMaxPorts", "%d ports from %d go beyond port 65535", dl.SequentialMaxPorts, dl.SequentialMinPort)
	}
	if dl.Deterministic && dl.SequentialMinPort == 0 && !dl.Disable {
		p.add("proxy.dynamicListeners.sequentialMinPort", "deterministic listeners need a minimum port (--dynamic-sequential-min-port)")
	}
	if dl.DefaultListenerIP == "" {
		p.add("proxy.dynamicListeners.defaultListenerIp", "must not be empty")
	}
	if dl.AdvertisedListener != "" {
		if _, err := ParseAdvertisedTemplate(dl.AdvertisedListener); err != nil {
			p.add("proxy.dynamicListeners.advertisedListener", "%v", err)
		}
	}
	for i, k := range px.ForbiddenAPIKeys {
		if k < 0 || k > 32767 {
			p.add(fmt.Sprintf("proxy.forbiddenApiKeys[%d]", i), "%d is not an API key", k)
		}
	}
	positive(p, "proxy.requestBufferSize", px.RequestBufferSize)
	positive(p, "proxy.responseBufferSize", px.ResponseBufferSize)
	if px.MaxFrameSize < 1024 {
		p.add("proxy.maxFrameSize", "%d is too small (at least 1024 bytes)", px.MaxFrameSize)
	}
	nonNegative(p, "proxy.listenerReadBufferSize", px.ListenerReadBufferSize)
	nonNegative(p, "proxy.listenerWriteBufferSize", px.ListenerWriteBufferSize)
	if px.DrainTimeout < 0 {
		p.add("proxy.drainTimeout", "must not be negative")
	}
}

func (c *Config) validateKafka(p *Problems) {
	k := &c.Kafka
	if k.DialTimeout <= 0 {
		p.add("kafka.dialTimeout", "must be positive")
	}
	if k.ReadTimeout < 0 {
		p.add("kafka.readTimeout", "must not be negative")
	}
	if k.WriteTimeout < 0 {
		p.add("kafka.writeTimeout", "must not be negative")
	}
	positive(p, "kafka.maxOpenRequests", k.MaxOpenRequests)
	nonNegative(p, "kafka.connectionReadBufferSize", k.ConnectionReadBufferSize)
	nonNegative(p, "kafka.connectionWriteBufferSize", k.ConnectionWriteBufferSize)
	if k.IdentityRequired && k.IdentityFile == "" {
		p.add("kafka.identityRequired", "needs an identity file (--upstream-identity-file)")
	}
}

// validateHTTPPaths checks the admin paths in a fixed order (so the
// message is stable) and rejects two endpoints on one path, where one would
// silently hide the other.
func (c *Config) validateHTTPPaths(p *Problems) {
	seen := map[string]string{}
	for _, e := range []struct{ path, v string }{
		{"http.healthPath", c.HTTP.HealthPath},
		{"http.readyPath", c.HTTP.ReadyPath},
		{"http.metricsPath", c.HTTP.MetricsPath},
	} {
		switch {
		case !strings.HasPrefix(e.v, "/"):
			p.add(e.path, "%q must start with /", e.v)
		case strings.ContainsAny(e.v, " \t\n?#"):
			p.add(e.path, "%q must be a plain path (no spaces, query or fragment)", e.v)
		case seen[e.v] != "":
			p.add(e.path, "%q is already used by %s", e.v, seen[e.v])
		default:
			seen[e.v] = e.path
		}
	}
}

func checkDialAddr(p *Problems, path, addr string) {
	if addr == "" {
		p.add(path, "must not be empty")
		return
	}
	if err := CheckDialAddr(addr); err != nil {
		p.add(path, "%v", err)
	}
}

func checkAddr(p *Problems, path, addr string) {
	if addr == "" {
		p.add(path, "must not be empty")
		return
	}
	if _, _, err := SplitHostPort(addr); err != nil {
		p.add(path, "%v", err)
	}
}

func positive(p *Problems, path string, v int) {
	if v <= 0 {
		p.add(path, "%d must be positive", v)
	}
}

func nonNegative(p *Problems, path string, v int) {
	if v < 0 {
		p.add(path, "%d must not be negative", v)
	}
}
