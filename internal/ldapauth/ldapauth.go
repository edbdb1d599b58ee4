// Package ldapauth checks PLAIN passwords against an LDAP directory
// (--auth-local-ldap-*), with the knobs of the LDAP plugin our users run
// with the proxy we replace: bind as attr=user,userDN (or user@domain for
// Active Directory), or first search the user with a service account;
// ldaps:// or StartTLS with a CA file; several servers tried in order.
//
// Every authentication is one short LDAP connection: a bind is the only
// way a directory checks a password, and a bound connection must not be
// reused for the next user.
package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
)

// Config is the directory and how users are found in it.
type Config struct {
	// URLs are ldap:// or ldaps:// servers, tried in order until one
	// answers (fail-over, not load sharing).
	URLs []string
	// UserDN is the base under which users are bound as UserAttr=name.
	UserDN string
	// UserAttr names the user in its DN (uid; sAMAccountName or cn in
	// Active Directory).
	UserAttr string
	// UPNDomain, if set, binds as name@UPNDomain instead of a DN.
	UPNDomain string
	// StartTLS upgrades ldap:// connections before anything is sent.
	StartTLS bool
	// CAFile replaces the system roots for the server certificate.
	CAFile string
	// InsecureSkipVerify accepts any server certificate (logged at start).
	InsecureSkipVerify bool
	// Search: find the user's entry with BindDN/BindPassword under
	// SearchBase (default UserDN) matching Filter ("%s" is the escaped
	// name), then bind as that entry.
	Search       bool
	BindDN       string
	BindPassword string
	SearchBase   string
	Filter       string
	// Timeout bounds one authentication (dial, TLS, binds, search).
	Timeout time.Duration
}

// Verifier is an auth.PasswordVerifier over a directory.
type Verifier struct {
	cfg Config
	tls *tls.Config
	log *slog.Logger
}

var _ auth.PasswordVerifier = (*Verifier)(nil)

// New checks cfg and loads the CA file.
func New(cfg Config, log *slog.Logger) (*Verifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("ldap: no server URL")
	}
	for _, u := range cfg.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "ldap" && p.Scheme != "ldaps") || p.Host == "" {
			return nil, fmt.Errorf("ldap: %q is not an ldap:// or ldaps:// URL", u)
		}
	}
	if cfg.UserAttr == "" {
		cfg.UserAttr = "uid"
	}
	if cfg.Search {
		if cfg.SearchBase == "" {
			cfg.SearchBase = cfg.UserDN
		}
		if cfg.SearchBase == "" {
			return nil, errors.New("ldap: a search needs a user search base or user DN")
		}
		if cfg.Filter == "" {
			cfg.Filter = "(" + cfg.UserAttr + "=%s)"
		}
		if strings.Count(cfg.Filter, "%s") != 1 {
			return nil, fmt.Errorf("ldap: user filter %q must contain %%s exactly once", cfg.Filter)
		}
	} else if cfg.UserDN == "" && cfg.UPNDomain == "" {
		return nil, errors.New("ldap: a user DN, a UPN domain or a search is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // an explicit operator choice, logged below
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if cfg.InsecureSkipVerify {
		log.Warn("ldap: server certificates are not verified (--auth-local-ldap-insecure-skip-verify)")
	}
	for _, u := range cfg.URLs {
		if strings.HasPrefix(u, "ldap://") && !cfg.StartTLS && !isLoopback(u) {
			log.Warn("ldap: passwords go to the directory in clear text (ldap:// without StartTLS)", "url", u)
		}
	}
	return &Verifier{cfg: cfg, tls: tc, log: log}, nil
}

// VerifyPassword binds to the directory as user with password.
func (v *Verifier) VerifyPassword(ctx context.Context, user, password string) error {
	// An empty password is an unauthenticated bind, which directories
	// accept for any name (RFC 4513 5.1.2): never a proof.
	if password == "" {
		return fmt.Errorf("%w: empty password", auth.ErrInvalidCredentials)
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	conn, err := v.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetTimeout(time.Until(d))
	}
	dn, err := v.userDN(conn, user)
	if err != nil {
		return err
	}
	if err := conn.Bind(dn, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return fmt.Errorf("%w: ldap bind as %q refused", auth.ErrInvalidCredentials, dn)
		}
		return fmt.Errorf("ldap bind as %q: %w", dn, err)
	}
	return nil
}

// userDN is the name to bind as: found by a search, user@domain, or
// attr=user under the user DN.
func (v *Verifier) userDN(conn *ldap.Conn, user string) (string, error) {
	switch {
	case v.cfg.Search:
		return v.search(conn, user)
	case v.cfg.UPNDomain != "":
		return user + "@" + v.cfg.UPNDomain, nil
	default:
		return v.cfg.UserAttr + "=" + ldap.EscapeDN(user) + "," + v.cfg.UserDN, nil
	}
}

func (v *Verifier) search(conn *ldap.Conn, user string) (string, error) {
	var err error
	if v.cfg.BindDN != "" {
		err = conn.Bind(v.cfg.BindDN, v.cfg.BindPassword)
	} else {
		err = conn.UnauthenticatedBind("")
	}
	if err != nil {
		return "", fmt.Errorf("ldap: service bind as %q: %w", v.cfg.BindDN, err)
	}
	filter := strings.Replace(v.cfg.Filter, "%s", ldap.EscapeFilter(user), 1)
	res, err := conn.Search(ldap.NewSearchRequest(v.cfg.SearchBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(v.cfg.Timeout/time.Second), false, filter, []string{"dn"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return "", fmt.Errorf("ldap: search %s: %w", filter, err)
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		return "", fmt.Errorf("%w: no entry matches %s under %q", auth.ErrUnknownUser, filter, v.cfg.SearchBase)
	case len(res.Entries) > 1:
		// Binding as the first of several would let whoever controls one
		// entry's password answer for a name that is ambiguous.
		return "", fmt.Errorf("%w: %s matches several entries under %q", auth.ErrInvalidCredentials, filter, v.cfg.SearchBase)
	}
	return res.Entries[0].DN, nil
}

// connect dials the servers in order and returns the first that answers,
// upgraded with StartTLS when configured.
func (v *Verifier) connect(ctx context.Context) (*ldap.Conn, error) {
	var errs []error
	for _, u := range v.cfg.URLs {
		conn, err := v.dial(ctx, u)
		if err == nil {
			return conn, nil
		}
		v.log.Warn("ldap server unavailable, trying the next", "url", u, "error", err)
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("ldap: no server answered: %w", errors.Join(errs...))
}

func (v *Verifier) dial(ctx context.Context, rawURL string) (*ldap.Conn, error) {
	d := &net.Dialer{}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	conn, err := ldap.DialURL(rawURL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(v.tlsFor(rawURL)))
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetTimeout(time.Until(dl))
	}
	if v.cfg.StartTLS && strings.HasPrefix(rawURL, "ldap://") {
		if err := conn.StartTLS(v.tlsFor(rawURL)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
	}
	return conn, nil
}

// tlsFor verifies the certificate against the URL's host name.
func (v *Verifier) tlsFor(rawURL string) *tls.Config {
	tc := v.tls.Clone()
	if p, err := url.Parse(rawURL); err == nil {
		tc.ServerName = p.Hostname()
	}
	return tc
}

func isLoopback(rawURL string) bool {
	p, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	if p.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(p.Hostname())
	return ip != nil && ip.IsLoopback()
}
