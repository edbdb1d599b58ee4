package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// ServerOptions describe a TLS listener: the proxy's client-facing side
// and the test kit's brokers.
type ServerOptions struct {
	CertFile, KeyFile string
	KeyPassword       []byte
	// ClientCAFile, when set, requires and verifies client certificates
	// signed by these CAs (Kafka's ssl.client.auth=required).
	ClientCAFile string
	MinVersion   uint16
	CipherSuites []uint16
	// CurvePreferences are the key exchanges offered, in order (nil:
	// Go's defaults).
	CurvePreferences []tls.CurveID
}

// ServerConfig loads the files and returns a listener config.
func ServerConfig(o ServerOptions) (*tls.Config, error) {
	certPEM, err := os.ReadFile(o.CertFile)
	if err != nil {
		return nil, fmt.Errorf("tls server certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls server key: %w", err)
	}
	kp, err := LoadKeyPair(certPEM, keyPEM, o.KeyPassword)
	if err != nil {
		return nil, fmt.Errorf("tls server certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
	}
	var pool *x509.CertPool
	if o.ClientCAFile != "" {
		data, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		cas, err := ParseCertificatesPEM(data)
		if err != nil {
			return nil, fmt.Errorf("tls client CA %s: %w", o.ClientCAFile, err)
		}
		pool = x509.NewCertPool()
		for _, ca := range cas {
			pool.AddCert(ca)
		}
	}
	cfg := NewServerConfig(kp, pool, o.MinVersion, o.CipherSuites)
	cfg.CurvePreferences = o.CurvePreferences
	return cfg, nil
}

// NewServerConfig builds a listener config from loaded material; a non-nil
// clientCAs requires verified client certificates.
func NewServerConfig(cert tls.Certificate, clientCAs *x509.CertPool, minVersion uint16, suites []uint16) *tls.Config {
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   minVersion,
		CipherSuites: suites,
	}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}
