package config

import (
	"github.com/kafka-proxy/kafka-proxy/internal/sni"
)

// SNI is single-port routing: one TLS listener serves the bootstrap name
// and a name per broker, and every address a client can learn is one of
// those names at AdvertisedPort.
type SNI struct {
	// ListenAddress is the TLS listener's local address; empty turns SNI
	// routing off.
	ListenAddress string `yaml:"listenAddress"`
	// BootstrapHost is the name that reaches a bootstrap broker.
	BootstrapHost string `yaml:"bootstrapHost"`
	// BrokerHostPattern names each broker: $(nodeId) stands for its node
	// id ("broker-$(nodeId).kafka.example.com").
	BrokerHostPattern string `yaml:"brokerHostPattern"`
	// AdvertisedPort is the port advertised with the names (a load
	// balancer's, e.g. 443); 0 advertises the listener's own.
	AdvertisedPort int `yaml:"advertisedPort"`
}

// Enabled reports whether SNI routing is configured.
func (s SNI) Enabled() bool { return s.ListenAddress != "" }

func (c *Config) validateSNI(p *Problems) {
	s := c.Proxy.SNI
	if !s.Enabled() {
		if s.BootstrapHost != "" || s.BrokerHostPattern != "" || s.AdvertisedPort != 0 {
			p.add("proxy.sni.listenAddress", "required with the other SNI settings (--sni-listen-address)")
		}
		return
	}
	checkAddr(p, "proxy.sni.listenAddress", s.ListenAddress)
	if !c.Proxy.TLS.Enable {
		p.add("proxy.sni.listenAddress", "SNI routing needs TLS on the proxy's listeners (--proxy-listener-tls-enable with a certificate for the bootstrap host and the broker names)")
	}
	switch {
	case s.BootstrapHost == "":
		p.add("proxy.sni.bootstrapHost", "required with proxy.sni.listenAddress (--sni-bootstrap-host)")
	case s.BrokerHostPattern == "":
		p.add("proxy.sni.brokerHostPattern", "required with proxy.sni.listenAddress (--sni-broker-host-pattern, e.g. 'broker-%s.kafka.example.com')", sni.Placeholder)
	default:
		if _, err := sni.ParseNames(s.BootstrapHost, s.BrokerHostPattern); err != nil {
			p.add("proxy.sni", "%v", err)
		}
	}
	if s.AdvertisedPort < 0 || s.AdvertisedPort > 65535 {
		p.add("proxy.sni.advertisedPort", "%d is not a port", s.AdvertisedPort)
	}
	if _, port, err := SplitHostPort(s.ListenAddress); err == nil && port != 0 {
		for i, m := range c.Proxy.BootstrapServers {
			if _, q, err := SplitHostPort(m.Listen); err == nil && q == port {
				p.add("proxy.sni.listenAddress", "local port %d is already used by proxy.bootstrapServers[%d]", port, i)
			}
		}
	}
}
