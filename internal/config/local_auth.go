package config

import (
	"strings"
	"time"
)

// Local SASL mechanism names (--auth-local-mechanism).
const (
	LocalPlain       = "PLAIN"
	LocalScramSHA256 = "SCRAM-SHA-256"
	LocalScramSHA512 = "SCRAM-SHA-512"
	LocalOAuthBearer = "OAUTHBEARER"
)

// Auth is who clients must be before the proxy forwards their requests.
type Auth struct {
	Local LocalAuth `yaml:"local"`
}

// LocalAuth terminates SASL on the proxy's listeners (--auth-local-*): a
// client authenticates to the proxy as to a broker, and the proxy
// authenticates to brokers with its own identity (kafka.sasl).
type LocalAuth struct {
	Enable bool `yaml:"enable"`
	// Mechanisms are offered in this order in SaslHandshake responses.
	Mechanisms []string `yaml:"mechanisms"`
	// SessionLifetime is Kafka's connections.max.reauth.ms: clients are
	// told it (KIP-368) and must re-authenticate within it; zero: sessions
	// do not expire.
	SessionLifetime time.Duration `yaml:"sessionLifetime"`
	// UsersFile is the credential store written by `kafka-proxy users`
	// (PLAIN and SCRAM).
	UsersFile string `yaml:"usersFile"`
	// JWT verifies OAUTHBEARER tokens.
	JWT LocalJWT `yaml:"jwt"`
	// LDAP checks PLAIN passwords against a directory.
	LDAP LocalLDAP `yaml:"ldap"`
	// Plugin is an existing plugin binary of the proxy we replace: a
	// password authenticator when PLAIN is offered, a token info when
	// OAUTHBEARER is.
	Plugin LocalPlugin `yaml:"plugin"`
}

// LocalPlugin starts a plugin binary (--auth-local-command, -param,
// -timeout, -log-level).
type LocalPlugin struct {
	Command string   `yaml:"command"`
	Params  []string `yaml:"params" secret:"true"`
	// Timeout bounds each call and the plugin's start.
	Timeout time.Duration `yaml:"timeout"`
	// LogLevel: the plugin's own log lines at or above it are logged.
	LogLevel string `yaml:"logLevel"`
}

// LocalLDAP checks PLAIN passwords by binding to a directory
// (--auth-local-ldap-*), with the knobs of the well-known LDAP plugin.
type LocalLDAP struct {
	// URLs: ldap:// or ldaps://, tried in order.
	URLs []string `yaml:"urls"`
	// UserDN: users bind as UserAttr=name,UserDN.
	UserDN    string `yaml:"userDn"`
	UserAttr  string `yaml:"userAttr"`
	UPNDomain string `yaml:"upnDomain"`
	// StartTLS upgrades ldap:// connections (default true, as the plugin).
	StartTLS           bool   `yaml:"startTls"`
	CAFile             string `yaml:"caFile"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
	// A search (when BindDN, SearchBase or Filter is set) finds the
	// user's entry first, bound as BindDN.
	BindDN           string `yaml:"bindDn"`
	BindPasswordFile string `yaml:"bindPasswordFile"`
	SearchBase       string `yaml:"userSearchBase"`
	Filter           string `yaml:"userFilter"`
}

// Search reports whether users are found by a search rather than bound
// by a DN built from their name.
func (l LocalLDAP) Search() bool { return l.BindDN != "" || l.SearchBase != "" || l.Filter != "" }

// LocalJWT checks OAUTHBEARER tokens as signed JWTs against a key set
// (--auth-local-jwks-*, --auth-local-jwt-*).
type LocalJWT struct {
	JWKSFile string `yaml:"jwksFile"`
	JWKSURL  string `yaml:"jwksUrl"`
	// JWKSCAFile replaces the system roots for JWKSURL.
	JWKSCAFile string `yaml:"jwksCaFile"`
	// JWKSRefresh is how often JWKSURL is fetched again.
	JWKSRefresh    time.Duration `yaml:"jwksRefresh"`
	Issuer         string        `yaml:"issuer"`
	Audience       string        `yaml:"audience"`
	PrincipalClaim string        `yaml:"principalClaim"`
	ClockSkew      time.Duration `yaml:"clockSkew"`
}

// Has reports whether mechanism (upper case) is enabled.
func (l LocalAuth) Has(mechanism string) bool {
	for _, m := range l.NormalizedMechanisms() {
		if m == mechanism {
			return true
		}
	}
	return false
}

// NormalizedMechanisms are the mechanisms in upper case, as the protocol
// names them.
func (l LocalAuth) NormalizedMechanisms() []string {
	out := make([]string, 0, len(l.Mechanisms))
	for _, m := range l.Mechanisms {
		out = append(out, strings.ToUpper(strings.TrimSpace(m)))
	}
	return out
}

func (c *Config) validateLocalAuth(p *Problems) {
	l := &c.Auth.Local
	plugin, ldap := l.Plugin.Command != "", len(l.LDAP.URLs) > 0
	if !l.Enable {
		// Security by default: a verifier configured without enabling it
		// would leave the listeners open while the operator thinks not.
		if l.UsersFile != "" || l.JWT.JWKSFile != "" || l.JWT.JWKSURL != "" || plugin || ldap {
			p.add("auth.local", "a verifier is set, but auth.local.enable is not: clients would not be authenticated (add --auth-local-enable)")
		}
		return
	}
	mechs := l.NormalizedMechanisms()
	if len(mechs) == 0 {
		p.add("auth.local.mechanisms", "empty: name at least one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (--auth-local-mechanism)")
	}
	seen := map[string]bool{}
	for _, m := range mechs {
		switch {
		case seen[m]:
			p.add("auth.local.mechanisms", "%s listed twice", m)
		case m == LocalPlain, m == LocalScramSHA256, m == LocalScramSHA512, m == LocalOAuthBearer:
		default:
			p.add("auth.local.mechanisms", "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER", m)
		}
		seen[m] = true
	}
	plain, oauth := l.Has(LocalPlain), l.Has(LocalOAuthBearer)
	scram := l.Has(LocalScramSHA256) || l.Has(LocalScramSHA512)
	c.validateLocalPlugin(p, plain, oauth, ldap)
	if ldap {
		c.validateLocalLDAP(p, plain)
	}
	// PLAIN is checked by the plugin, else the directory, else the users
	// file; SCRAM only by the users file (it holds SCRAM credentials).
	needFile := (plain && !plugin && !ldap) || scram
	switch {
	case needFile && l.UsersFile == "":
		p.add("auth.local.usersFile", "required for SCRAM, and for PLAIN without --auth-local-command or --auth-local-ldap-url: the credentials clients are checked against (--auth-local-users-file, written by `kafka-proxy users add`)")
	case !needFile && l.UsersFile != "":
		p.add("auth.local.usersFile", "set, but no mechanism checks passwords with it (SCRAM, or PLAIN without a plugin or LDAP)")
	}
	j := l.JWT
	byJWKS := oauth && !plugin
	switch {
	case byJWKS && (j.JWKSFile == "") == (j.JWKSURL == ""):
		p.add("auth.local.jwt", "OAUTHBEARER needs exactly one of --auth-local-jwks-file, --auth-local-jwks-url and a token-info plugin (--auth-local-command)")
	case !byJWKS && (j.JWKSFile != "" || j.JWKSURL != ""):
		p.add("auth.local.jwt", "a JWKS is set, but OAUTHBEARER is not enabled or the plugin (--auth-local-command) checks its tokens")
	}
	if j.JWKSURL != "" && !strings.HasPrefix(j.JWKSURL, "https://") && !strings.HasPrefix(j.JWKSURL, "http://") {
		p.add("auth.local.jwt.jwksUrl", "%q: want https://", j.JWKSURL)
	}
	if j.ClockSkew < 0 || j.JWKSRefresh < 0 {
		p.add("auth.local.jwt", "clock skew and refresh must not be negative")
	}
	if l.SessionLifetime < 0 {
		p.add("auth.local.sessionLifetime", "%v is negative", l.SessionLifetime)
	}
}

// validateLocalPlugin: one plugin binary is one kind, so it serves PLAIN
// or OAUTHBEARER, never both, and never PLAIN beside LDAP.
func (c *Config) validateLocalPlugin(p *Problems, plain, oauth, ldap bool) {
	pl := c.Auth.Local.Plugin
	if pl.Command == "" {
		if len(pl.Params) > 0 {
			p.add("auth.local.plugin.params", "set without --auth-local-command")
		}
		return
	}
	switch {
	case plain && oauth:
		p.add("auth.local.plugin", "a plugin is a password authenticator (PLAIN) or a token info (OAUTHBEARER), not both: offer one of them with --auth-local-command")
	case !plain && !oauth:
		p.add("auth.local.plugin", "--auth-local-command checks PLAIN passwords or OAUTHBEARER tokens, and neither is offered (--auth-local-mechanism)")
	case plain && ldap:
		p.add("auth.local.plugin", "PLAIN is checked by the plugin or by LDAP, not both (--auth-local-command, --auth-local-ldap-url)")
	}
	if pl.Timeout <= 0 {
		p.add("auth.local.plugin.timeout", "%v: must be positive", pl.Timeout)
	}
	switch strings.ToLower(pl.LogLevel) {
	case "trace", "debug", "info", "warn", "error", "off":
	default:
		p.add("auth.local.plugin.logLevel", "%q: want trace, debug, info, warn, error or off", pl.LogLevel)
	}
}

func (c *Config) validateLocalLDAP(p *Problems, plain bool) {
	d := c.Auth.Local.LDAP
	if !plain {
		p.add("auth.local.ldap", "LDAP checks PLAIN passwords, and PLAIN is not offered (--auth-local-mechanism)")
	}
	for _, u := range d.URLs {
		if !strings.HasPrefix(u, "ldap://") && !strings.HasPrefix(u, "ldaps://") {
			p.add("auth.local.ldap.urls", "%q: want ldap:// or ldaps://", u)
		}
	}
	if !d.Search() && d.UserDN == "" && d.UPNDomain == "" {
		p.add("auth.local.ldap", "name where users are: --auth-local-ldap-user-dn, --auth-local-ldap-upn-domain, or a search (--auth-local-ldap-user-search-base)")
	}
	if d.Filter != "" && strings.Count(d.Filter, "%s") != 1 {
		p.add("auth.local.ldap.userFilter", "%q must contain %%s (the user name) exactly once", d.Filter)
	}
	if (d.BindDN == "") != (d.BindPasswordFile == "") {
		p.add("auth.local.ldap.bindDn", "a bind DN and its password file go together (--auth-local-ldap-bind-dn, --auth-local-ldap-bind-password-file)")
	}
}
