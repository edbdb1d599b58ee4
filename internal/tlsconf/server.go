package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ServerOptions describe a TLS listener: the proxy's client-facing side
// and the test kit's brokers.
type ServerOptions struct {
	CertFile, KeyFile string
	KeyPassword       []byte
	// ClientCAFile, when set, requires and verifies client certificates
	// signed by these CAs (Kafka's ssl.client.auth=required).
	ClientCAFile string
	// CRLFile holds PEM (or DER) CRLs signed by the client CAs: client
	// certificates they revoke are refused in the handshake.
	CRLFile      string
	MinVersion   uint16
	CipherSuites []uint16
	// CurvePreferences are the key exchanges offered, in order (nil:
	// Go's defaults).
	CurvePreferences []tls.CurveID
	// Refresh, when positive, re-checks the files at most this often (on
	// a handshake) and reloads them when one changed; a failed reload keeps
	// the old material and logs.
	Refresh time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Server hands every handshake the listener config built from the
// current files.
type Server struct {
	opts ServerOptions

	mu    sync.Mutex
	files watch
	cfg   *tls.Config
}

// NewServer loads every file once, failing with a message naming the file
// and the problem.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CRLFile != "" && o.ClientCAFile == "" {
		return nil, errors.New("tls CRL file needs a client CA file: only verified client certificates can be checked for revocation")
	}
	s := &Server{opts: o, files: newWatch(o.Refresh, o.Now())}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServerConfig loads the files and returns a listener config.
func ServerConfig(o ServerOptions) (*tls.Config, error) {
	s, err := NewServer(o)
	if err != nil {
		return nil, err
	}
	return s.Config(), nil
}

// Config is the listener's tls.Config: each handshake gets the current
// material (reloaded first when due).
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: s.current().MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current(), nil
		},
	}
}

func (s *Server) current() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maybeReload()
	return s.cfg
}

// load reads every file; on success it replaces the config and the stamps
// of the files it came from.
func (s *Server) load() error {
	files := fileStamps{}
	o := s.opts
	certPEM, err := files.read(o.CertFile, "server certificate")
	if err != nil {
		return err
	}
	keyPEM, err := files.read(o.KeyFile, "server key")
	if err != nil {
		return err
	}
	kp, err := LoadKeyPair(certPEM, keyPEM, o.KeyPassword)
	if err != nil {
		return fmt.Errorf("tls server certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
	}
	var pool *x509.CertPool
	var cas []*x509.Certificate
	if o.ClientCAFile != "" {
		data, err := files.read(o.ClientCAFile, "client CA")
		if err != nil {
			return err
		}
		if cas, err = ParseCertificatesPEM(data); err != nil {
			return fmt.Errorf("tls client CA %s: %w", o.ClientCAFile, err)
		}
		pool = x509.NewCertPool()
		for _, ca := range cas {
			pool.AddCert(ca)
		}
	}
	cfg := NewServerConfig(kp, pool, o.MinVersion, o.CipherSuites)
	cfg.CurvePreferences = o.CurvePreferences
	// No TLS 1.3 session tickets: the ticket a server sends right after the
	// handshake makes the socket readable before the client's first
	// request, and kafka-python 2.0 then closes the connection ("Socket
	// EVENT_READ without in-flight-requests") over SSL without SASL.
	// Kafka clients hold their connections, so resumption saves little.
	cfg.SessionTicketsDisabled = true
	if o.CRLFile != "" {
		data, err := files.read(o.CRLFile, "CRL")
		if err != nil {
			return err
		}
		revoked, stale, err := parseCRLs(data, cas, o.Now())
		if err != nil {
			return fmt.Errorf("tls CRL %s: %w", o.CRLFile, err)
		}
		for _, issuer := range stale {
			// Still used: an old list of revocations beats none.
			o.Log.Warn("listener CRL is past its next update: publish a fresh one", "crl", o.CRLFile, "issuer", issuer)
		}
		cfg.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
			for _, chain := range chains {
				for _, c := range chain {
					if revoked[revocationKey(c.RawIssuer, c.SerialNumber.Bytes())] {
						return fmt.Errorf("client certificate %q (serial %x) is revoked", c.Subject.String(), c.SerialNumber)
					}
				}
			}
			return nil
		}
	}
	s.cfg, s.files.stamps = cfg, files
	return nil
}

func revocationKey(issuer, serial []byte) string { return string(issuer) + "\x00" + string(serial) }

// parseCRLs reads every CRL in data (PEM blocks "X509 CRL", or one DER
// CRL) and checks each is signed by one of cas, so a CRL from elsewhere
// cannot be mistaken for the CA's. stale names the issuers of CRLs whose
// next update is before now.
func parseCRLs(data []byte, cas []*x509.Certificate, now time.Time) (revoked map[string]bool, stale []string, err error) {
	var ders [][]byte
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "X509 CRL" {
			ders = append(ders, block.Bytes)
		}
	}
	if len(ders) == 0 {
		ders = [][]byte{data}
	}
	revoked = map[string]bool{}
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		signed := false
		for _, ca := range cas {
			if crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, nil, fmt.Errorf("CRL %d (issuer %q) is not signed by a client CA", i+1, crl.Issuer.String())
		}
		if !crl.NextUpdate.IsZero() && crl.NextUpdate.Before(now) {
			stale = append(stale, crl.Issuer.String())
		}
		for _, e := range crl.RevokedCertificateEntries {
			revoked[revocationKey(crl.RawIssuer, e.SerialNumber.Bytes())] = true
		}
	}
	return revoked, stale, nil
}

// maybeReload reloads when Refresh is due and a file changed, keeping the
// old config if the new files are broken.
func (s *Server) maybeReload() {
	if !s.files.due(s.opts.Now()) {
		return
	}
	if err := s.load(); err != nil {
		s.opts.Log.Warn("listener tls files changed but could not be reloaded; keeping the previous ones", "err", err)
		return
	}
	s.opts.Log.Info("listener tls files reloaded", "cert", s.opts.CertFile, "ca", s.opts.ClientCAFile, "crl", s.opts.CRLFile)
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
