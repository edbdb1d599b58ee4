package config

// ListenerTLS makes the proxy's own listeners speak TLS to clients, and,
// with a CA chain, require and verify client certificates.
type ListenerTLS struct {
	Enable          bool     `yaml:"enable"`
	CertFile        string   `yaml:"certFile"`
	KeyFile         string   `yaml:"keyFile"`
	KeyPassword     string   `yaml:"keyPassword"`
	CAChainCertFile string   `yaml:"caChainCertFile"`
	MinVersion      string   `yaml:"minVersion"`
	CipherSuites    []string `yaml:"cipherSuites"`
}

func (c *Config) validateListenerTLS(p *Problems) {
	t := &c.Proxy.TLS
	if !t.Enable {
		return
	}
	if t.CertFile == "" {
		p.add("proxy.tls.certFile", "required with proxy.tls.enable (--proxy-listener-cert-file)")
	}
	if t.KeyFile == "" {
		p.add("proxy.tls.keyFile", "required with proxy.tls.enable (--proxy-listener-key-file)")
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		p.add("proxy.tls.minVersion", "%q is not 1.2 or 1.3", t.MinVersion)
	}
}
