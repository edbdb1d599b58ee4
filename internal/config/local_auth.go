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
}

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
	if !l.Enable {
		// Security by default: a verifier configured without enabling it
		// would leave the listeners open while the operator thinks not.
		if l.UsersFile != "" || l.JWT.JWKSFile != "" || l.JWT.JWKSURL != "" {
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
	passwords := l.Has(LocalPlain) || l.Has(LocalScramSHA256) || l.Has(LocalScramSHA512)
	switch {
	case passwords && l.UsersFile == "":
		p.add("auth.local.usersFile", "required for PLAIN and SCRAM: the credentials clients are checked against (--auth-local-users-file, written by `kafka-proxy users add`)")
	case !passwords && l.UsersFile != "":
		p.add("auth.local.usersFile", "set, but neither PLAIN nor SCRAM is enabled (--auth-local-mechanism)")
	}
	j := l.JWT
	oauth := l.Has(LocalOAuthBearer)
	switch {
	case oauth && (j.JWKSFile == "") == (j.JWKSURL == ""):
		p.add("auth.local.jwt", "OAUTHBEARER needs exactly one of --auth-local-jwks-file and --auth-local-jwks-url")
	case !oauth && (j.JWKSFile != "" || j.JWKSURL != ""):
		p.add("auth.local.jwt", "a JWKS is set, but OAUTHBEARER is not enabled (--auth-local-mechanism)")
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
