package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// bindServerFlags defines every `server` flag on fs, bound to cfg's fields,
// with cfg's current values as defaults. The names are those of the widely
// deployed kafka-proxy, so existing manifests run unchanged.
func bindServerFlags(fs *pflag.FlagSet, cfg *config.Config) {
	px, k := &cfg.Proxy, &cfg.Kafka
	bindGatewayFlags(fs, "auth-gateway-client", &k.Gateway, "Open every broker connection with the gateway handshake towards a server-side kafka-proxy", "Token-provider plugin",
		"google-id-provider, oidc-provider or jwt")
	bindGatewayFlags(fs, "auth-gateway-server", &px.Gateway, "Admit only client-side kafka-proxies that pass the gateway handshake", "Token-info plugin",
		"google-id-info or jwt")
	fs.Var(mappingsValue(&px.BootstrapServers), "bootstrap-server-mapping", "Mapping of Kafka bootstrap server address to local address (host:port,host:port(,advhost:advport)); repeatable")
	fs.Var(mappingsValue(&px.ExternalServers), "external-server-mapping", "Mapping of Kafka server address to external address (host:port,host:port). A listener for the external address is not started; repeatable")
	fs.BoolVar(&px.DynamicListeners.Disable, "dynamic-listeners-disable", px.DynamicListeners.Disable, "Disable dynamic listeners")
	fs.BoolVar(&px.DynamicListeners.Deterministic, "deterministic-listeners", px.DynamicListeners.Deterministic, "Enable deterministic listeners (listener port = min port + broker id)")
	fs.IntVar(&px.DynamicListeners.SequentialMinPort, "dynamic-sequential-min-port", px.DynamicListeners.SequentialMinPort, "If set to non-zero, makes the dynamic listener use a sequential port starting with this value rather than a random port every time")
	fs.IntVar(&px.DynamicListeners.SequentialMaxPorts, "dynamic-sequential-max-ports", px.DynamicListeners.SequentialMaxPorts, "Number of ports from --dynamic-sequential-min-port that dynamic listeners use, wrapping around (0: no bound)")
	fs.StringVar(&px.DynamicListeners.DefaultListenerIP, "default-listener-ip", px.DynamicListeners.DefaultListenerIP, "Default listener IP")
	fs.StringVar(&px.DynamicListeners.AdvertisedListener, "dynamic-advertised-listener", px.DynamicListeners.AdvertisedListener, "Advertised address for dynamic listeners: a host, optionally host:port (a fixed port instead of the listener's), where {{.brokerId}} is the node id. If empty, default-listener-ip is used")
	bindSNIFlags(fs, &px.SNI)
	fs.IntSliceVar(&px.ForbiddenAPIKeys, "forbidden-api-keys", px.ForbiddenAPIKeys, "Forbidden Kafka request types, e.g. 20 (DeleteTopics): a client requesting one is disconnected")
	fs.BoolVar(&px.ProducerAcks0Disabled, "producer-acks-0-disabled", px.ProducerAcks0Disabled, "Accepted for compatibility, no effect: a performance hint in the proxy we replace (assume producers never send acks=0); acks=0 produce requests are always relayed")
	fs.DurationVar(&px.ListenerKeepAlive, "proxy-listener-keep-alive", px.ListenerKeepAlive, "Keep alive period for client connections. If zero, keep-alives are disabled")
	fs.IntVar(&px.ListenerReadBufferSize, "proxy-listener-read-buffer-size", px.ListenerReadBufferSize, "Size of the operating system's receive buffer for client connections. If zero, system default is used")
	fs.IntVar(&px.ListenerWriteBufferSize, "proxy-listener-write-buffer-size", px.ListenerWriteBufferSize, "Size of the operating system's transmit buffer for client connections. If zero, system default is used")
	fs.IntVar(&px.RequestBufferSize, "proxy-request-buffer-size", px.RequestBufferSize, "Request header buffer size per connection")
	fs.IntVar(&px.ResponseBufferSize, "proxy-response-buffer-size", px.ResponseBufferSize, "Response header buffer size per connection")
	fs.IntVar(&px.MaxFrameSize, "proxy-max-frame-size", px.MaxFrameSize, "Largest request or response frame accepted, in bytes; a larger size prefix closes the connection")
	ad := &px.Admission
	bindConnectionFilterFlags(fs, ad)
	fs.StringVar(&ad.ProxyProtocol, "proxy-listener-proxy-protocol", ad.ProxyProtocol, "PROXY protocol (v1 and v2) on the listeners: off, optional (a header if sent) or required, so filters, ACL hosts and logs see the client behind a load balancer")
	fs.StringSliceVar(&ad.ProxyProtocolTrustedCIDRs, "proxy-listener-proxy-protocol-trusted-cidr", ad.ProxyProtocolTrustedCIDRs, "Balancers allowed to send PROXY protocol headers (CIDRs, comma separated; repeatable); empty: any peer")
	fs.DurationVar(&px.DrainTimeout, "shutdown-drain-timeout", px.DrainTimeout, "On SIGTERM/SIGINT, how long in-flight requests may take to finish")

	fs.StringVar(&k.ClientID, "kafka-client-id", k.ClientID, "Client id the proxy uses for its own requests to brokers")
	fs.DurationVar(&k.DialTimeout, "kafka-dial-timeout", k.DialTimeout, "How long to wait for the initial connection")
	fs.DurationVar(&k.ReadTimeout, "kafka-read-timeout", k.ReadTimeout, "How long a broker may go without sending while a response is due: before it starts (on top of the wait the request itself allows, e.g. a Fetch's max wait) and between its bytes")
	fs.DurationVar(&k.WriteTimeout, "kafka-write-timeout", k.WriteTimeout, "How long to wait for a transmit")
	fs.DurationVar(&k.KeepAlive, "kafka-keep-alive", k.KeepAlive, "Keep alive period for broker connections. If zero, keep-alives are disabled")
	fs.IntVar(&k.MaxOpenRequests, "kafka-max-open-requests", k.MaxOpenRequests, "Maximal number of open requests per connection before reading more from the client blocks")
	fs.IntVar(&k.ConnectionReadBufferSize, "kafka-connection-read-buffer-size", k.ConnectionReadBufferSize, "Size of the operating system's receive buffer for broker connections. If zero, system default is used")
	fs.IntVar(&k.ConnectionWriteBufferSize, "kafka-connection-write-buffer-size", k.ConnectionWriteBufferSize, "Size of the operating system's transmit buffer for broker connections. If zero, system default is used")
	fs.DurationVar(&k.ReauthMinLifetime, "kafka-reauth-min-lifetime", k.ReauthMinLifetime, "Shortest interval between re-authentications (KIP-368) of one broker connection; a shorter broker session is still renewed before it expires, at 85–90% of its lifetime")
	fs.StringVar(&k.ForwardProxy, "forward-proxy", k.ForwardProxy, "Dial the brokers through this proxy: socks5://[user:pass@]host:port or http://[user:pass@]host:port (HTTP CONNECT); TLS and SASL run inside the tunnel")
	fs.Var(&listValue[config.DialMapping]{dst: &k.DialAddressMappings, parse: config.ParseDialMapping}, "dial-address-mapping",
		"Dial another address for a broker than the one it has (broker host:port,dial host:port), e.g. through a tunnel; TLS still verifies the broker's name; repeatable")
	bindUpstreamFlags(fs, k)
	bindListenerTLSFlags(fs, &px.TLS)
	bindLocalAuthFlags(fs, &cfg.Auth.Local)
	bindACLFlags(fs, &cfg.ACL, &cfg.Audit)

	fs.BoolVar(&cfg.HTTP.Disable, "http-disable", cfg.HTTP.Disable, "Disable HTTP endpoints")
	fs.StringVar(&cfg.HTTP.ListenAddress, "http-listen-address", cfg.HTTP.ListenAddress, "Address that kafka-proxy's HTTP endpoints listen on")
	fs.StringVar(&cfg.HTTP.HealthPath, "http-health-path", cfg.HTTP.HealthPath, "Path of the health endpoint")
	fs.StringVar(&cfg.HTTP.ReadyPath, "http-ready-path", cfg.HTTP.ReadyPath, "Path of the readiness endpoint (ready when a broker is reachable)")
	fs.StringVar(&cfg.HTTP.MetricsPath, "http-metrics-path", cfg.HTTP.MetricsPath, "Path on which to expose metrics")
	fs.StringVar(&cfg.Log.Format, "log-format", cfg.Log.Format, "Log format text or json")
	fs.StringVar(&cfg.Log.Level, "log-level", cfg.Log.Level, "Log level debug, info, warning or error")
	fs.StringVar(&cfg.Log.TimeFieldName, "log-time-fieldname", cfg.Log.TimeFieldName, "JSON log field for the time")
	fs.StringVar(&cfg.Log.LevelFieldName, "log-level-fieldname", cfg.Log.LevelFieldName, "JSON log field for the level")
	fs.StringVar(&cfg.Log.MsgFieldName, "log-msg-fieldname", cfg.Log.MsgFieldName, "JSON log field for the message")
	fs.BoolVar(&cfg.Debug.Enable, "debug-enable", cfg.Debug.Enable, "Enable the pprof debug endpoint")
	fs.StringVar(&cfg.Debug.ListenAddress, "debug-listen-address", cfg.Debug.ListenAddress, "Debug listen address")
}

// listValue is a repeatable flag whose values are parsed one by one
// (broker mappings, dial mappings): the first use replaces the defaults.
type listValue[T fmt.Stringer] struct {
	dst     *[]T
	parse   func(string) (T, error)
	changed bool
}

func mappingsValue(dst *[]config.Mapping) *listValue[config.Mapping] {
	return &listValue[config.Mapping]{dst: dst, parse: config.ParseMapping}
}

func (v *listValue[T]) String() string {
	if v.dst == nil {
		return ""
	}
	return strings.Join(v.GetSlice(), " ")
}

func (v *listValue[T]) Set(s string) error {
	m, err := v.parse(s)
	if err != nil {
		return err
	}
	if !v.changed {
		*v.dst = nil
		v.changed = true
	}
	*v.dst = append(*v.dst, m)
	return nil
}

func (v *listValue[T]) Type() string { return "stringArray" }

func (v *listValue[T]) Append(s string) error { return v.Set(s) }

func (v *listValue[T]) Replace(ss []string) error {
	out := make([]T, 0, len(ss))
	for _, s := range ss {
		m, err := v.parse(s)
		if err != nil {
			return err
		}
		out = append(out, m)
	}
	*v.dst = out
	return nil
}

func (v *listValue[T]) GetSlice() []string {
	out := make([]string, 0, len(*v.dst))
	for _, m := range *v.dst {
		out = append(out, m.String())
	}
	return out
}

// overlayFlags copies every flag set on the command line in from onto a
// flag set bound to cfg, so flags override the YAML file.
func overlayFlags(from *pflag.FlagSet, cfg *config.Config) error {
	to := pflag.NewFlagSet("overlay", pflag.ContinueOnError)
	bindServerFlags(to, cfg)
	var err error
	from.Visit(func(f *pflag.Flag) {
		t := to.Lookup(f.Name)
		if t == nil || err != nil {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			err = t.Value.(pflag.SliceValue).Replace(sv.GetSlice())
			return
		}
		err = t.Value.Set(f.Value.String())
	})
	return err
}

// bindConnectionFilterFlags binds the listeners' address filters and
// connection limits (server and demo).
func bindConnectionFilterFlags(fs *pflag.FlagSet, ad *config.Admission) {
	fs.StringSliceVar(&ad.AllowCIDRs, "proxy-listener-allow-cidr", ad.AllowCIDRs, "Serve only clients in these CIDRs (IPv4 or IPv6, comma separated; repeatable); others are refused at accept")
	fs.StringSliceVar(&ad.DenyCIDRs, "proxy-listener-deny-cidr", ad.DenyCIDRs, "Refuse clients in these CIDRs at accept (comma separated; repeatable; deny wins over allow)")
	fs.IntVar(&ad.MaxConnections, "proxy-listener-max-connections", ad.MaxConnections, "Most client connections open at once, over all listeners (0: no limit); more are refused at accept")
	fs.IntVar(&ad.MaxConnectionsPerIP, "proxy-listener-max-connections-per-ip", ad.MaxConnectionsPerIP, "Most client connections open at once from one address (0: no limit)")
}

// bindACLFlags binds the ACL and audit flags (server and demo).
func bindACLFlags(fs *pflag.FlagSet, a *config.ACL, au *config.Audit) {
	fs.StringArrayVar(&a.Files, "acl-file", a.Files, "ACL rules: a `FILE` or directory of *.yaml files holding Strimzi KafkaUser manifests or plain rule lists (repeatable); changes apply without a restart")
	fs.StringVar(&a.SuperUsers, "acl-super-users", a.SuperUsers, "Principals allowed everything, as Kafka's super.users: 'User:admin;User:ops'")
	fs.BoolVar(&a.AllowEveryoneIfNoACLFound, "acl-allow-everyone-if-no-acl-found", a.AllowEveryoneIfNoACLFound, "Allow a resource no ACL names to everyone, as Kafka's allow.everyone.if.no.acl.found")
	fs.StringVar(&au.Log, "audit-log", au.Log, "Audit trail: JSON lines of authentications, refused connections and ACL denials, to a `FILE` (reopened on SIGHUP) or stdout")
	fs.BoolVar(&au.Allowed, "audit-log-allowed", au.Allowed, "Also record allowed ACL decisions in the audit trail")
	fs.DurationVar(&a.Refresh, "acl-refresh", a.Refresh, "How often the ACL files are checked for changes (SIGHUP reloads them at once; 0: only on SIGHUP)")
}

// bindGatewayFlags binds one side's --auth-gateway-* flags.
func bindGatewayFlags(fs *pflag.FlagSet, prefix string, g *config.Gateway, enable, plugin, builtins string) {
	fs.BoolVar(&g.Enable, prefix+"-enable", g.Enable, enable)
	fs.StringVar(&g.Command, prefix+"-command", g.Command, plugin+" binary of the proxy we replace (net/rpc or gRPC form), or a built-in: "+builtins)
	fs.StringArrayVar(&g.Params, prefix+"-param", g.Params, "Argument passed to --"+prefix+"-command (repeatable, in order)")
	fs.StringVar(&g.LogLevel, prefix+"-log-level", g.LogLevel, "Lowest level of the plugin's own log lines that are logged: trace, debug, info, warn, error or off")
	fs.Uint64Var(&g.Magic, prefix+"-magic", g.Magic, "Magic number both sides of the gateway handshake send and expect")
	fs.StringVar(&g.Method, prefix+"-method", g.Method, "Method name both sides of the gateway handshake send and expect")
	fs.DurationVar(&g.Timeout, prefix+"-timeout", g.Timeout, "Bound on the gateway handshake and each plugin call")
	j := &g.JWT
	if strings.HasSuffix(prefix, "client") {
		fs.StringVar(&j.TokenFile, prefix+"-jwt-token-file", j.TokenFile, "Built-in jwt method (--"+prefix+"-command jwt): file holding the signed JWT, re-read when it changes")
		fs.StringVar(&j.TokenCommand, prefix+"-jwt-token-command", j.TokenCommand, "Built-in jwt method: shell command printing the signed JWT")
		return
	}
	fs.StringVar(&j.JWKSFile, prefix+"-jwt-jwks-file", j.JWKSFile, "Built-in jwt method (--"+prefix+"-command jwt): JWKS file of the keys that sign gateway tokens")
	fs.StringVar(&j.JWKSURL, prefix+"-jwt-jwks-url", j.JWKSURL, "Built-in jwt method: JWKS URL (https) of the keys that sign gateway tokens")
	fs.StringVar(&j.JWKSCAFile, prefix+"-jwt-jwks-ca-file", j.JWKSCAFile, "Built-in jwt method: PEM CA certificates for the JWKS URL instead of the system roots")
	fs.StringVar(&j.Issuer, prefix+"-jwt-issuer", j.Issuer, "Built-in jwt method: required iss")
	fs.StringVar(&j.Audience, prefix+"-jwt-audience", j.Audience, "Built-in jwt method: required aud")
	fs.StringVar(&j.SubjectRegex, prefix+"-jwt-subject-regex", j.SubjectRegex, "Built-in jwt method: the sub claim must match this regular expression")
}

// bindSNIFlags defines the SNI routing flags (server and demo).
func bindSNIFlags(fs *pflag.FlagSet, c *config.SNI) {
	fs.StringVar(&c.ListenAddress, "sni-listen-address", c.ListenAddress, "One TLS listener for the bootstrap host and every broker, routed by SNI name (needs --proxy-listener-tls-enable); empty: off")
	fs.StringVar(&c.BootstrapHost, "sni-bootstrap-host", c.BootstrapHost, "SNI name that reaches a bootstrap broker, e.g. bootstrap.kafka.example.com")
	fs.StringVar(&c.BrokerHostPattern, "sni-broker-host-pattern", c.BrokerHostPattern, "SNI name advertised for each broker, $(nodeId) standing for its node id, e.g. 'broker-$(nodeId).kafka.example.com'")
	fs.IntVar(&c.AdvertisedPort, "sni-advertised-port", c.AdvertisedPort, "Port advertised with the SNI names (a load balancer's in front, e.g. 443); 0: the SNI listener's own")
}
