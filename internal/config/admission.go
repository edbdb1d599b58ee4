package config

import (
	"github.com/kafka-proxy/kafka-proxy/internal/connfilter"
)

// Admission refuses client connections at accept, before TLS
// (--proxy-listener-allow-cidr, -deny-cidr, -max-connections,
// -max-connections-per-ip).
type Admission struct {
	// AllowCIDRs: when set, only clients in one of them are served.
	AllowCIDRs []string `yaml:"allowCidrs"`
	// DenyCIDRs: clients in one of them are refused (deny wins).
	DenyCIDRs []string `yaml:"denyCidrs"`
	// MaxConnections bounds open client connections in total, and
	// MaxConnectionsPerIP per client address; zero: no limit.
	MaxConnections      int `yaml:"maxConnections"`
	MaxConnectionsPerIP int `yaml:"maxConnectionsPerIp"`
	// ProxyProtocol is off, optional or required: whether connections
	// start with a PROXY protocol header (v1 or v2) naming the real
	// client, from a balancer in ProxyProtocolTrustedCIDRs (any peer if
	// empty).
	ProxyProtocol             string   `yaml:"proxyProtocol"`
	ProxyProtocolTrustedCIDRs []string `yaml:"proxyProtocolTrustedCidrs"`
}

func (c *Config) validateAdmission(p *Problems) {
	a := c.Proxy.Admission
	for _, f := range []struct {
		path string
		v    []string
	}{{"proxy.admission.allowCidrs", a.AllowCIDRs}, {"proxy.admission.denyCidrs", a.DenyCIDRs},
		{"proxy.admission.proxyProtocolTrustedCidrs", a.ProxyProtocolTrustedCIDRs}} {
		if _, err := connfilter.ParseCIDRs(f.v); err != nil {
			p.add(f.path, "%v", err)
		}
	}
	switch a.ProxyProtocol {
	case "", "off", "optional", "required":
	default:
		p.add("proxy.admission.proxyProtocol", "%q: expected off, optional or required (--proxy-listener-proxy-protocol)", a.ProxyProtocol)
	}
	if a.MaxConnections < 0 {
		p.add("proxy.admission.maxConnections", "%d is negative", a.MaxConnections)
	}
	if a.MaxConnectionsPerIP < 0 {
		p.add("proxy.admission.maxConnectionsPerIp", "%d is negative", a.MaxConnectionsPerIP)
	}
}
