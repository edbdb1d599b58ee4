package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// listenerTLS builds the client-facing TLS config, or nil when disabled.
func listenerTLS(c config.ListenerTLS, log *slog.Logger) (*tls.Config, error) {
	if !c.Enable {
		return nil, nil
	}
	opts := tlsconf.ServerOptions{CertFile: c.CertFile, KeyFile: c.KeyFile, ClientCAFile: c.CAChainCertFile, KeyPassword: []byte(c.KeyPassword),
		CRLFile: c.CRLFile, Refresh: c.Refresh, Log: log}
	var err error
	if opts.MinVersion, err = tlsconf.ParseVersion(c.MinVersion); err != nil {
		return nil, fmt.Errorf("proxy.tls.minVersion: %w", err)
	}
	if opts.CipherSuites, err = tlsconf.ParseCipherSuites(c.CipherSuites); err != nil {
		return nil, fmt.Errorf("proxy.tls.cipherSuites: %w", err)
	}
	if opts.CurvePreferences, err = tlsconf.ParseCurves(c.CurvePreferences); err != nil {
		return nil, fmt.Errorf("proxy.tls.curvePreferences: %w", err)
	}
	return tlsconf.ServerConfig(opts)
}

// handshakeTimeout bounds how long a client may take to finish TLS.
const handshakeTimeout = 10 * time.Second

// serverHandshake runs the client-facing TLS handshake and explains a
// failure in the client's terms: a plaintext Kafka client on a TLS port
// otherwise shows up as an obscure "record header" error.
func serverHandshake(conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	tc := tls.Server(conn, cfg)
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	err := tc.Handshake()
	_ = conn.SetDeadline(time.Time{})
	if err == nil {
		return tc, nil
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		if p := wire.ForeignProtocol(rh.RecordHeader[:]); p != "" {
			return nil, fmt.Errorf("client speaks %s, not TLS, on a TLS listener", p)
		}
		return nil, fmt.Errorf("client speaks plaintext (likely Kafka without TLS) to a TLS listener: enable TLS (security.protocol=SSL) in the client: %w", err)
	}
	return nil, fmt.Errorf("tls handshake: %w", err)
}
