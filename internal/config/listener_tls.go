package config

import (
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/certsubject"
	"github.com/kafka-proxy/kafka-proxy/internal/principal"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// ListenerTLS makes the proxy's own listeners speak TLS to clients, and,
// with a CA chain, require and verify client certificates.
type ListenerTLS struct {
	Enable          bool     `yaml:"enable"`
	CertFile        string   `yaml:"certFile"`
	KeyFile         string   `yaml:"keyFile"`
	KeyPassword     string   `yaml:"keyPassword" secret:"true"`
	CAChainCertFile string   `yaml:"caChainCertFile"`
	MinVersion      string   `yaml:"minVersion"`
	CipherSuites    []string `yaml:"cipherSuites"`
	// CurvePreferences are the key exchanges offered, in order.
	CurvePreferences []string `yaml:"curvePreferences"`
	// CRLFile holds CRLs of the client CA: revoked client certificates
	// are refused.
	CRLFile string `yaml:"crlFile"`
	// Refresh, when positive, reloads rotated certificate, key, CA and
	// CRL files this often without a restart.
	Refresh time.Duration `yaml:"refresh"`
	// RequiredClientSubjects limits the client certificates accepted by
	// subject (certsubject syntax); any one of them suffices.
	RequiredClientSubjects []string `yaml:"requiredClientSubjects"`
	// PrincipalMappingRules is Kafka's ssl.principal.mapping.rules: how a
	// client certificate's subject becomes the principal's name ("" is
	// DEFAULT, the subject itself).
	PrincipalMappingRules string `yaml:"principalMappingRules"`
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
	// The same names as kafka.tls (validateTLS), parsed by the code that
	// builds the listener's config, so validate and server agree.
	if _, err := tlsconf.ParseVersion(t.MinVersion); err != nil {
		p.add("proxy.tls.minVersion", "%v", err)
	}
	if _, err := tlsconf.ParseCipherSuites(t.CipherSuites); err != nil {
		p.add("proxy.tls.cipherSuites", "%v", err)
	}
	if _, err := tlsconf.ParseCurves(t.CurvePreferences); err != nil {
		p.add("proxy.tls.curvePreferences", "%v", err)
	}
	if _, err := certsubject.ParseAll(t.RequiredClientSubjects); err != nil {
		p.add("proxy.tls.requiredClientSubjects", "%v", err)
	}
	if t.CRLFile != "" && t.CAChainCertFile == "" {
		p.add("proxy.tls.crlFile", "needs proxy.tls.caChainCertFile (--proxy-listener-ca-chain-cert-file): only verified client certificates can be checked for revocation")
	}
	if t.Refresh < 0 {
		p.add("proxy.tls.refresh", "%v is negative", t.Refresh)
	}
	if len(t.RequiredClientSubjects) > 0 && t.CAChainCertFile == "" {
		p.add("proxy.tls.requiredClientSubjects", "needs proxy.tls.caChainCertFile (--proxy-listener-ca-chain-cert-file): only verified client certificates can be checked")
	}
	if _, err := principal.ParseRules(t.PrincipalMappingRules); err != nil {
		p.add("proxy.tls.principalMappingRules", "%v (--proxy-listener-principal-mapping-rules)", err)
	}
}
