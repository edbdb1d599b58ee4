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
	// UsersFile is the credential store written by `kafka-proxy users`.
	UsersFile string `yaml:"usersFile"`
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
		if l.UsersFile != "" {
			p.add("auth.local.usersFile", "set, but auth.local.enable is not: clients would not be authenticated (add --auth-local-enable)")
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
		case m == LocalPlain, m == LocalScramSHA256, m == LocalScramSHA512:
		case m == "OAUTHBEARER":
			p.add("auth.local.mechanisms", "OAUTHBEARER needs a token verifier (JWKS or a token-info plugin), which this version does not have yet")
		default:
			p.add("auth.local.mechanisms", "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", m)
		}
		seen[m] = true
	}
	if l.UsersFile == "" {
		p.add("auth.local.usersFile", "required with auth.local.enable: the credentials clients are checked against (--auth-local-users-file, written by `kafka-proxy users add`)")
	}
	if l.SessionLifetime < 0 {
		p.add("auth.local.sessionLifetime", "%v is negative", l.SessionLifetime)
	}
}
