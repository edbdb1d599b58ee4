package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ClientOptions describe the broker-facing TLS client.
type ClientOptions struct {
	// CAFile holds PEM CA certificates; empty means the system pool.
	CAFile string
	// SystemPool adds the system roots to CAFile's.
	SystemPool bool
	// CertFile/KeyFile are the client identity for mTLS (optional).
	CertFile, KeyFile string
	// KeyPassword decrypts an encrypted key.
	KeyPassword        []byte
	InsecureSkipVerify bool
	// ServerName overrides the name checked in every broker certificate.
	ServerName   string
	MinVersion   uint16
	CipherSuites []uint16
	// Refresh, when positive, re-checks the files at most this often and
	// reloads those that changed; a failed reload keeps the old material
	// and logs, so a half-written rotation does not break new dials.
	Refresh time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Client hands out a tls.Config per dial from the current material.
type Client struct {
	opts ClientOptions

	mu    sync.Mutex
	files watch
	roots *x509.CertPool
	cert  *tls.Certificate
}

// NewClient loads every file once, failing with a message naming the file
// and the problem, so a bad setup stops the proxy at start-up.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MinVersion == 0 {
		o.MinVersion = tls.VersionTLS12
	}
	c := &Client{opts: o, files: newWatch(o.Refresh, o.Now())}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads every file; on success it replaces the material and the
// stamps of the files it came from.
func (c *Client) load() error {
	o := c.opts
	files := fileStamps{}
	roots, err := loadRoots(o, files)
	if err != nil {
		return err
	}
	var cert *tls.Certificate
	if o.CertFile != "" || o.KeyFile != "" {
		certPEM, err := files.read(o.CertFile, "client certificate")
		if err != nil {
			return err
		}
		keyPEM, err := files.read(o.KeyFile, "client key")
		if err != nil {
			return err
		}
		kp, err := LoadKeyPair(certPEM, keyPEM, o.KeyPassword)
		if err != nil {
			return fmt.Errorf("tls client certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cert = &kp
	}
	c.roots, c.cert, c.files.stamps = roots, cert, files
	return nil
}

func loadRoots(o ClientOptions, files fileStamps) (*x509.CertPool, error) {
	if o.CAFile == "" {
		if o.SystemPool {
			return x509.SystemCertPool()
		}
		return nil, nil // crypto/tls uses the system roots
	}
	data, err := files.read(o.CAFile, "CA chain")
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("tls CA chain %s: %w", o.CAFile, err)
	}
	pool := x509.NewCertPool()
	if o.SystemPool {
		if sys, err := x509.SystemCertPool(); err == nil {
			pool = sys
		}
	}
	for _, ca := range certs {
		pool.AddCert(ca)
	}
	return pool, nil
}

// maybeReload reloads when Refresh is due and a file changed, keeping the
// old material if the new files are broken. It runs on the dialling
// goroutine: no watcher to stop, nothing to leak.
func (c *Client) maybeReload() {
	if !c.files.due(c.opts.Now()) {
		return
	}
	if err := c.load(); err != nil {
		c.opts.Log.Warn("tls material changed but could not be reloaded; keeping the previous one", "err", err)
		return
	}
	c.opts.Log.Info("tls material reloaded", "ca", c.opts.CAFile, "cert", c.opts.CertFile)
}

// Config returns a tls.Config for dialling host (the broker's host name or
// IP), reloading rotated files first when due.
func (c *Client) Config(host string) *tls.Config {
	c.mu.Lock()
	c.maybeReload()
	roots, cert := c.roots, c.cert
	c.mu.Unlock()
	name := c.opts.ServerName
	if name == "" {
		name = host
	}
	cfg := &tls.Config{
		ServerName:         name,
		RootCAs:            roots,
		InsecureSkipVerify: c.opts.InsecureSkipVerify, //nolint:gosec // operator's explicit choice
		MinVersion:         c.opts.MinVersion,
		CipherSuites:       c.opts.CipherSuites,
	}
	if cert != nil {
		// GetClientCertificate (not Certificates) so the broker gets our
		// certificate even if its CertificateRequest names CAs that do
		// not match ours exactly (intermediate vs root).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// ClientCertificate returns the current client certificate's leaf, or nil.
func (c *Client) ClientCertificate() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert == nil {
		return nil
	}
	return c.cert.Leaf
}

// Unchanged reports whether cur is the file old described, unchanged: same
// inode (a rename-based rotation makes a new one), modification time and
// size. File timestamps are only as fine as the kernel tick, so the inode
// matters.
func Unchanged(old, cur os.FileInfo) bool {
	return old != nil && cur != nil && os.SameFile(old, cur) && old.ModTime().Equal(cur.ModTime()) && old.Size() == cur.Size()
}
