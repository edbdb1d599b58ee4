package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuthError is an upstream authentication failure. Its message names the
// broker, the mechanism and what the broker said, and never a secret: the
// dialer scrubs every credential it knows from the text.
type AuthError struct {
	Broker    string
	Mechanism string // SASL mechanism, or "TLS"
	// BrokerMessage is SaslAuthenticate's error_message (or the TLS alert
	// the broker sent), empty if the broker said nothing.
	BrokerMessage string
	Err           error
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upstream %s authentication to broker %s failed", e.Mechanism, e.Broker)
	switch {
	case e.BrokerMessage != "" && e.Err != nil:
		fmt.Fprintf(&b, ": broker says: %s (%v)", e.BrokerMessage, e.Err)
	case e.BrokerMessage != "":
		fmt.Fprintf(&b, ": broker says: %s", e.BrokerMessage)
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *AuthError) Unwrap() error { return e.Err }

// scrub removes every secret from s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubErr keeps errors.Is/As working while the text is secret-free.
func scrubErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := scrub(msg, secrets)
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// explainTLS adds the operator's next step to common TLS failures.
func explainTLS(err error, clientCert *x509.Certificate, now time.Time) (hint, brokerMsg string) {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case errors.As(err, &unknown):
		hint = "the broker's certificate is not signed by a trusted CA (check --tls-ca-chain-cert-file / --tls-system-cert-pool)"
	case errors.As(err, &host):
		hint = "the broker's certificate does not name this host (check the broker address or --tls-server-name)"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		hint = "the broker's certificate has expired or is not yet valid"
	case errors.As(err, &verify):
		hint = "the broker's certificate could not be verified"
	}
	if errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:") {
		brokerMsg = alertText(err)
		if clientCert != nil && now.After(clientCert.NotAfter) {
			hint = fmt.Sprintf("our client certificate %q expired at %s", clientCert.Subject.CommonName, clientCert.NotAfter.UTC().Format(time.RFC3339))
		} else if clientCert != nil {
			hint = fmt.Sprintf("the broker rejected our client certificate %q (issuer %q)", clientCert.Subject.CommonName, clientCert.Issuer.CommonName)
		} else {
			hint = "the broker rejected the handshake (does it require a client certificate? --tls-client-cert-file)"
		}
	}
	return hint, brokerMsg
}

func alertText(err error) string {
	s := err.Error()
	if i := strings.Index(s, "remote error: "); i >= 0 {
		return s[i+len("remote error: "):]
	}
	return s
}
