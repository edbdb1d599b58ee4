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
}

func (c *Config) validateAdmission(p *Problems) {
	a := c.Proxy.Admission
	for _, f := range []struct {
		path string
		v    []string
	}{{"proxy.admission.allowCidrs", a.AllowCIDRs}, {"proxy.admission.denyCidrs", a.DenyCIDRs}} {
		if _, err := connfilter.ParseCIDRs(f.v); err != nil {
			p.add(f.path, "%v", err)
		}
	}
	if a.MaxConnections < 0 {
		p.add("proxy.admission.maxConnections", "%d is negative", a.MaxConnections)
	}
	if a.MaxConnectionsPerIP < 0 {
		p.add("proxy.admission.maxConnectionsPerIp", "%d is negative", a.MaxConnectionsPerIP)
	}
}
