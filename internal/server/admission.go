package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/kafka-proxy/kafka-proxy/internal/certsubject"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/connfilter"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/principal"
	"github.com/kafka-proxy/kafka-proxy/internal/proxyproto"
)

// admissionSteps lists the steps the server runs on every accepted
// connection, in order; listenTLS is nil for plaintext listeners. sameCert,
// if not nil, is the upstream client certificate a client must present
// (--tls-same-client-cert-enable).
func admissionSteps(px config.Proxy, listenTLS *tls.Config, sameCert func() *x509.Certificate, gw *gatewayServer, hooks connfilter.Hooks, log *slog.Logger) ([]pipeline.Step, error) {
	steps, err := connectionSteps(px, listenTLS, sameCert, hooks, log)
	if err != nil || gw == nil {
		return steps, err
	}
	return append(steps, gw.step()), nil // after TLS: the token travels encrypted
}

// connectionSteps are the steps up to the client's principal.
func connectionSteps(px config.Proxy, listenTLS *tls.Config, sameCert func() *x509.Certificate, hooks connfilter.Hooks, log *slog.Logger) ([]pipeline.Step, error) {
	var steps []pipeline.Step
	ad := px.Admission
	if m := proxyproto.Mode(ad.ProxyProtocol); m == proxyproto.Optional || m == proxyproto.Required {
		trusted, err := connfilter.ParseCIDRs(ad.ProxyProtocolTrustedCIDRs)
		if err != nil {
			return nil, err
		}
		steps = append(steps, proxyproto.Step(m, trusted)) // first: what follows sees the real client
	}
	if len(ad.AllowCIDRs)+len(ad.DenyCIDRs) > 0 {
		allow, err := connfilter.ParseCIDRs(ad.AllowCIDRs)
		if err != nil {
			return nil, err
		}
		deny, err := connfilter.ParseCIDRs(ad.DenyCIDRs)
		if err != nil {
			return nil, err
		}
		steps = append(steps, connfilter.NewFilter(allow, deny, hooks, log).Step())
	}
	if ad.MaxConnections > 0 || ad.MaxConnectionsPerIP > 0 {
		steps = append(steps, connfilter.NewLimits(ad.MaxConnections, ad.MaxConnectionsPerIP, hooks, log).Step())
	}
	steps = append(steps, socketOptions(px))
	if listenTLS == nil {
		return steps, nil
	}
	mapper, err := principal.ParseRules(px.TLS.PrincipalMappingRules)
	if err != nil {
		return nil, err
	}
	steps = append(steps, tlsHandshake(listenTLS))
	if sameCert != nil {
		steps = append(steps, sameClientCert(sameCert))
	}
	if len(px.TLS.RequiredClientSubjects) > 0 {
		required, err := certsubject.ParseAll(px.TLS.RequiredClientSubjects)
		if err != nil {
			return nil, err
		}
		steps = append(steps, clientSubject(required))
	}
	return append(steps, clientPrincipal(mapper)), nil
}

// socketOptions applies the listener's socket buffer sizes.
func socketOptions(px config.Proxy) pipeline.Step {
	return pipeline.Step{Name: "socket", Run: func(_ context.Context, c *pipeline.Client) error {
		tc, ok := c.Conn.(*net.TCPConn)
		if !ok {
			return nil
		}
		if n := px.ListenerReadBufferSize; n > 0 {
			_ = tc.SetReadBuffer(n)
		}
		if n := px.ListenerWriteBufferSize; n > 0 {
			_ = tc.SetWriteBuffer(n)
		}
		return nil
	}}
}

// tlsHandshake terminates client-facing TLS and records what it learnt:
// the TLS state (client certificate included) and the SNI name.
func tlsHandshake(cfg *tls.Config) pipeline.Step {
	return pipeline.Step{Name: "tls", Run: func(_ context.Context, c *pipeline.Client) error {
		tc, err := serverHandshake(c.Conn, cfg)
		if err != nil {
			return err
		}
		state := tc.ConnectionState()
		c.Conn, c.TLS, c.ServerName = tc, &state, state.ServerName
		return nil
	}}
}

// clientPrincipal names a client that presented a certificate as Kafka
// does, with the listener's principal mapping rules; without one it stays
// User:ANONYMOUS. A certificate no rule maps fails the connection, as a
// broker fails its SSL authentication.
func clientPrincipal(m *principal.Mapper) pipeline.Step {
	return pipeline.Step{Name: "principal", Run: func(_ context.Context, c *pipeline.Client) error {
		if c.TLS == nil || len(c.TLS.PeerCertificates) == 0 {
			return nil
		}
		p, err := m.FromCertificate(c.TLS.PeerCertificates[0])
		if err != nil {
			return err
		}
		c.Principal = p
		return nil
	}}
}

// sameClientCert admits only a client presenting the proxy's own upstream
// client certificate, byte for byte.
func sameClientCert(upstreamCert func() *x509.Certificate) pipeline.Step {
	return pipeline.Step{Name: "same-client-cert", Run: func(_ context.Context, c *pipeline.Client) error {
		want := upstreamCert()
		if c.TLS == nil || len(c.TLS.PeerCertificates) == 0 {
			return errors.New("no client certificate, and --tls-same-client-cert-enable requires the proxy's upstream one")
		}
		if want == nil || !bytes.Equal(c.TLS.PeerCertificates[0].Raw, want.Raw) {
			return fmt.Errorf("client certificate %q is not the proxy's upstream client certificate (--tls-same-client-cert-enable)", c.TLS.PeerCertificates[0].Subject)
		}
		return nil
	}}
}

// clientSubject refuses a client whose certificate meets none of the
// required subjects (--proxy-listener-tls-required-client-subject).
func clientSubject(required certsubject.Any) pipeline.Step {
	return pipeline.Step{Name: "client-subject", Run: func(_ context.Context, c *pipeline.Client) error {
		if c.TLS == nil || len(c.TLS.PeerCertificates) == 0 {
			return errors.New("no client certificate, and the listener requires certain subjects")
		}
		return required.Check(c.TLS.PeerCertificates[0])
	}}
}
