package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/idtoken"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// TLS configures TLS towards the brokers. Files are PEM; with Refresh set
// they are re-read when they change, so rotated certificates (cert-manager,
// Vault agents) take effect without a restart.
type TLS struct {
	Enable bool `yaml:"enable"`
	// CAChainCertFile holds the CA certificates that sign the brokers'
	// certificates (roots and intermediates). Empty means the system pool.
	CAChainCertFile string `yaml:"caChainCertFile"`
	// SystemCertPool adds the system roots to CAChainCertFile.
	SystemCertPool bool `yaml:"systemCertPool"`
	// ClientCertFile and ClientKeyFile are the proxy's identity for mTLS
	// (ssl.client.auth=required). The cert file may carry the chain.
	ClientCertFile string `yaml:"clientCertFile"`
	ClientKeyFile  string `yaml:"clientKeyFile"`
	// ClientKeyPassword decrypts an encrypted key (legacy "Proc-Type:
	// 4,ENCRYPTED" PEM or encrypted PKCS#8). ClientKeyPasswordFile reads it
	// from a file instead, so it need not sit on a command line.
	ClientKeyPassword     string `yaml:"clientKeyPassword" secret:"true"`
	ClientKeyPasswordFile string `yaml:"clientKeyPasswordFile"`
	InsecureSkipVerify    bool   `yaml:"insecureSkipVerify"`
	// SameClientCertEnable admits on the proxy's TLS listener only a
	// client whose certificate is the proxy's own upstream client
	// certificate (ClientCertFile), as --tls-same-client-cert-enable does
	// in the proxy we replace: only holders of that certificate and key
	// may use the proxy's mTLS identity.
	SameClientCertEnable bool `yaml:"sameClientCertEnable"`
	// ServerName overrides the name verified in the brokers' certificates
	// (default: the host of each broker address).
	ServerName string `yaml:"serverName"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"minVersion"`
	// CipherSuites restricts TLS 1.0–1.2 suites by Go/IANA name; TLS 1.3
	// suites are not configurable.
	CipherSuites []string `yaml:"cipherSuites"`
	// Refresh, when positive, is how often the files are checked for
	// changes (at most once per interval, on the next dial).
	Refresh time.Duration `yaml:"refresh"`
}

// SASL configures SASL authentication towards the brokers.
type SASL struct {
	Enable bool `yaml:"enable"`
	// Method is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or
	// AWS_MSK_IAM.
	Method   string `yaml:"method"`
	Username string `yaml:"username"`
	// Password, PasswordFile and PasswordEnv are alternatives; the file and
	// the variable are read at every (re-)authentication, so a rotated
	// password is picked up without a restart.
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"passwordFile"`
	PasswordEnv  string `yaml:"passwordEnv"`
	// JaasConfigFile is a Java JAAS file with a PlainLoginModule or
	// ScramLoginModule entry carrying username="…" password="…".
	JaasConfigFile string `yaml:"jaasConfigFile"`
	OAuth          OAuth  `yaml:"oauth"`
	AWS            AWS    `yaml:"aws"`
	// Plugin (--sasl-plugin-*) is a token-provider plugin of the proxy we
	// replace: OAUTHBEARER towards the brokers with the tokens it hands
	// out. As there, it takes precedence over the method (with or without
	// --sasl-enable).
	Plugin TokenPlugin `yaml:"plugin"`
	GSSAPI GSSAPI      `yaml:"gssapi"`
}

// TokenPlugin starts a token-provider plugin (../authplugin): COMMAND
// PARAM..., each call bounded by Timeout.
type TokenPlugin struct {
	Enable    bool          `yaml:"enable"`
	Command   string        `yaml:"command"`
	Params    []string      `yaml:"params" secret:"true"`
	Mechanism string        `yaml:"mechanism"`
	LogLevel  string        `yaml:"logLevel"`
	Timeout   time.Duration `yaml:"timeout"`
}

// Effective is the SASL towards the brokers as the dialer uses it: a
// token plugin stands for OAUTHBEARER with --sasl-enable.
func (s SASL) Effective() SASL {
	if s.Plugin.Enable {
		s.Enable, s.Method = true, MechanismOAuthBearer
	}
	return s
}

// OAuth selects where OAUTHBEARER tokens come from: TokenFile, else
// TokenCommand, else AWS MSK IAM tokens signed with kafka.sasl.aws.
type OAuth struct {
	// TokenFile holds a token; it is re-read whenever it changes.
	TokenFile string `yaml:"tokenFile"`
	// TokenCommand is run with /bin/sh -c and prints a token, optionally
	// followed by an expiry line (RFC 3339 or Unix seconds), or a JSON
	// object {"token"|"access_token", "expires_at"|"expires_in"}.
	TokenCommand        string        `yaml:"tokenCommand"`
	TokenCommandTimeout time.Duration `yaml:"tokenCommandTimeout"`
}

// AWS is the identity for MSK IAM (OAUTHBEARER tokens and AWS_MSK_IAM),
// resolved through the default AWS credential chain.
type AWS struct {
	Region          string `yaml:"region"`
	Profile         string `yaml:"profile"`
	RoleARN         string `yaml:"roleArn"`
	RoleSessionName string `yaml:"roleSessionName"`
	// IdentityLookup asks STS who the credentials are at start
	// (GetCallerIdentity) and logs the ARN; a failure stops the start.
	IdentityLookup bool `yaml:"identityLookup"`
}

// SASL mechanism names as Kafka spells them.
const (
	MechanismPlain       = "PLAIN"
	MechanismScram256    = "SCRAM-SHA-256"
	MechanismScram512    = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
	MechanismAWSMSKIAM   = "AWS_MSK_IAM"
	MechanismGSSAPI      = "GSSAPI"
)

// GSSAPI is Kerberos towards the brokers (--gssapi-*): the proxy logs in
// as Username@Realm with a keytab or a password, asks the KDC for a ticket
// to ServiceName/<broker host> (or the host SPNHostsMapping names for
// it), and runs Kafka's GSSAPI exchange (RFC 4752).
type GSSAPI struct {
	AuthType           string            `yaml:"authType"` // KEYTAB or USER
	KeytabPath         string            `yaml:"keytab"`
	KerberosConfigPath string            `yaml:"krb5Config"`
	ServiceName        string            `yaml:"serviceName"`
	Username           string            `yaml:"username"`
	Password           string            `yaml:"password" secret:"true"`
	Realm              string            `yaml:"realm"`
	DisablePAFXFAST    bool              `yaml:"disablePaFxFast"`
	SPNHostsMapping    map[string]string `yaml:"spnHostsMapping"`
}

func validateGSSAPI(p *Problems, g GSSAPI) {
	const at = "kafka.sasl.gssapi."
	switch strings.ToUpper(g.AuthType) {
	case "USER":
		if g.Password == "" {
			p.add(at+"password", "is required for auth type USER (--gssapi-password or GSSAPI_PASSWORD)")
		}
	case "KEYTAB":
		if g.KeytabPath == "" {
			p.add(at+"keytab", "is required for auth type KEYTAB (--gssapi-keytab)")
		}
	default:
		p.add(at+"authType", "%q is not KEYTAB or USER", g.AuthType)
	}
	for _, f := range []struct{ name, flag, v string }{
		{"krb5Config", "--gssapi-krb5", g.KerberosConfigPath}, {"username", "--gssapi-username", g.Username},
		{"realm", "--gssapi-realm", g.Realm}, {"serviceName", "--gssapi-servicename", g.ServiceName},
	} {
		if f.v == "" {
			p.add(at+f.name, "is required for GSSAPI (%s)", f.flag)
		}
	}
}

// Mechanisms lists the supported upstream SASL mechanisms.
var Mechanisms = []string{MechanismPlain, MechanismScram256, MechanismScram512, MechanismOAuthBearer, MechanismAWSMSKIAM, MechanismGSSAPI}

func defaultTLS() TLS { return TLS{MinVersion: "1.2"} }

func defaultSASL() SASL {
	return SASL{
		Method: MechanismPlain,
		OAuth:  OAuth{TokenCommandTimeout: 10 * time.Second},
		AWS:    AWS{RoleSessionName: "kafka-proxy"},
		Plugin: TokenPlugin{Mechanism: MechanismOAuthBearer, LogLevel: "trace", Timeout: 10 * time.Second},
		GSSAPI: GSSAPI{AuthType: "KEYTAB", KerberosConfigPath: "/etc/krb5.conf", ServiceName: "kafka", Username: "kafka"},
	}
}

// NormalizedMethod is Method upper-cased with surrounding space removed,
// so "scram-sha-512" on a command line works.
func (s SASL) NormalizedMethod() string { return strings.ToUpper(strings.TrimSpace(s.Method)) }

// OAuthSource names where OAUTHBEARER tokens come from: "file",
// "command" or "aws-msk-iam".
func (s SASL) OAuthSource() string {
	switch {
	case s.Plugin.Enable:
		return "plugin"
	case s.OAuth.TokenFile != "":
		return "file"
	case s.OAuth.TokenCommand != "":
		return "command"
	default:
		return "aws-msk-iam"
	}
}

func (c *Config) validateUpstream(p *Problems) {
	validateTLS(p, &c.Kafka.TLS)
	validateSASL(p, &c.Kafka.SASL)
	// kafka.reauthMinLifetime (config.go) bounds how often a connection
	// re-authenticates (KIP-368); shorter sessions are still renewed.
	if c.Kafka.ReauthMinLifetime < 0 {
		p.add("kafka.reauthMinLifetime", "must not be negative")
	}
	if t := c.Kafka.TLS; t.SameClientCertEnable && (!c.Proxy.TLS.Enable || !t.Enable || t.ClientCertFile == "") {
		p.add("kafka.tls.sameClientCertEnable", "needs TLS on the proxy's listeners (--proxy-listener-tls-enable) and a client certificate towards the brokers (--tls-enable, --tls-client-cert-file): there is no certificate to compare")
	}
	if fp := c.Kafka.ForwardProxy; fp != "" {
		if err := checkForwardProxy(fp); err != nil {
			p.add("kafka.forwardProxy", "%v", err)
		}
	}
	seen := map[string]bool{}
	for i, m := range c.Kafka.DialAddressMappings {
		at := fmt.Sprintf("kafka.dialAddressMappings[%d]", i)
		for _, a := range []struct{ field, addr string }{{"from", m.From}, {"to", m.To}} {
			if err := CheckDialAddr(a.addr); err != nil {
				p.add(at+"."+a.field, "%v", err)
			}
		}
		if k := strings.ToLower(m.From); seen[k] {
			p.add(at+".from", "%s is mapped twice", m.From)
		} else {
			seen[k] = true
		}
	}
}

func validateTLS(p *Problems, t *TLS) {
	const at = "kafka.tls."
	if _, err := tlsconf.ParseVersion(t.MinVersion); err != nil {
		p.add(at+"minVersion", "%v", err)
	}
	if _, err := tlsconf.ParseCipherSuites(t.CipherSuites); err != nil {
		p.add(at+"cipherSuites", "%v", err)
	}
	if t.Refresh < 0 {
		p.add(at+"refresh", "must not be negative")
	}
	if (t.ClientCertFile == "") != (t.ClientKeyFile == "") {
		if t.ClientCertFile == "" {
			p.add(at+"clientCertFile", "is required with clientKeyFile (--tls-client-cert-file)")
		} else {
			p.add(at+"clientKeyFile", "is required with clientCertFile (--tls-client-key-file)")
		}
	}
	if t.ClientKeyPassword != "" && t.ClientKeyPasswordFile != "" {
		p.add(at+"clientKeyPasswordFile", "set only one of clientKeyPassword and clientKeyPasswordFile")
	}
	if (t.ClientKeyPassword != "" || t.ClientKeyPasswordFile != "") && t.ClientKeyFile == "" {
		p.add(at+"clientKeyPassword", "is set but there is no clientKeyFile")
	}
}

func validateSASL(p *Problems, s *SASL) {
	const at = "kafka.sasl."
	if s.OAuth.TokenCommandTimeout < 0 {
		p.add(at+"oauth.tokenCommandTimeout", "must not be negative (0 means 10s)")
	}
	if pl := s.Plugin; pl.Enable {
		if pl.Command == "" {
			p.add(at+"plugin.command", "is required with the token plugin (--sasl-plugin-command)")
		}
		if idtoken.IsInfo(pl.Command) {
			p.add(at+"plugin.command", "%q checks tokens; --sasl-plugin-command needs a token provider (%s, %s or a plugin)", pl.Command, idtoken.GoogleIDProvider, idtoken.OIDCProvider)
		}
		if m := strings.ToUpper(pl.Mechanism); m != "" && m != MechanismOAuthBearer {
			p.add(at+"plugin.mechanism", "%q: a token plugin provides %s tokens", pl.Mechanism, MechanismOAuthBearer)
		}
		if pl.Timeout < 0 {
			p.add(at+"plugin.timeout", "must not be negative")
		}
		return
	}
	if !s.Enable {
		return // its settings are ignored (Warnings)
	}
	method := s.NormalizedMethod()
	passwords := 0
	for _, set := range []bool{s.Password != "", s.PasswordFile != "", s.PasswordEnv != ""} {
		if set {
			passwords++
		}
	}
	if passwords > 1 {
		p.add(at+"password", "set only one of password, passwordFile and passwordEnv")
	}
	switch method {
	case MechanismPlain, MechanismScram256, MechanismScram512:
		if s.JaasConfigFile != "" {
			if s.Username != "" || passwords > 0 {
				p.add(at+"jaasConfigFile", "is an alternative to username/password: set one or the other")
			}
			return
		}
		if s.Username == "" {
			p.add(at+"username", "is required for %s (--sasl-username or --sasl-jaas-config-file)", method)
		}
		if passwords == 0 {
			p.add(at+"password", "is required for %s (--sasl-password, --sasl-password-file or --sasl-password-env)", method)
		}
	case MechanismOAuthBearer:
		if s.OAuth.TokenFile != "" && s.OAuth.TokenCommand != "" {
			p.add(at+"oauth", "set only one of tokenFile and tokenCommand")
		}
		if s.OAuth.TokenFile == "" && s.OAuth.TokenCommand == "" && s.AWS.Region == "" {
			p.add(at+"oauth", "OAUTHBEARER needs a token source: tokenFile, tokenCommand, or kafka.sasl.aws.region for MSK IAM tokens")
		}
		noPasswords(p, s, method)
	case MechanismAWSMSKIAM:
		noPasswords(p, s, method)
	case MechanismGSSAPI:
		validateGSSAPI(p, s.GSSAPI)
		noPasswords(p, s, method)
	default:
		p.add(at+"method", "%q is not one of %s", s.Method, strings.Join(Mechanisms, ", "))
	}
}

// RedactedForwardProxy is ForwardProxy fit for a log line: no password.
func (k Kafka) RedactedForwardProxy() string {
	u, err := url.Parse(k.ForwardProxy)
	if err != nil {
		return "<unparsable>"
	}
	return u.Redacted()
}

// checkForwardProxy checks a --forward-proxy URL; errors never repeat
// its password.
func checkForwardProxy(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL (want socks5://[user:pass@]host:port or http://[user:pass@]host:port)")
	}
	if u.Scheme != "socks5" && u.Scheme != "socks5h" && u.Scheme != "http" {
		return fmt.Errorf("%s: scheme must be socks5 or http", u.Redacted())
	}
	if err := CheckDialAddr(u.Host); err != nil {
		return fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return fmt.Errorf("%s: want only scheme, credentials, host and port", u.Redacted())
	}
	return nil
}

// upstreamWarnings are settings that do nothing without the switch that
// enables them. The proxy we replace ignores them silently; here they
// start with a warning naming what is ignored, so a manifest written for
// it still runs.
func (c *Config) upstreamWarnings() []string {
	var w []string
	if t := c.Kafka.TLS; !t.Enable {
		w = ignored(w, "kafka.tls.", "TLS to the brokers is off (--tls-enable)", []setting{
			{"caChainCertFile", "--tls-ca-chain-cert-file", t.CAChainCertFile != ""},
			{"clientCertFile", "--tls-client-cert-file", t.ClientCertFile != ""},
			{"clientKeyFile", "--tls-client-key-file", t.ClientKeyFile != ""},
			{"serverName", "--tls-server-name", t.ServerName != ""},
		})
	}
	if s := c.Kafka.SASL; !s.Enable {
		w = ignored(w, "kafka.sasl.", "SASL to the brokers is off (--sasl-enable)", []setting{
			{"username", "--sasl-username", s.Username != ""}, {"password", "--sasl-password", s.Password != ""},
			{"passwordFile", "--sasl-password-file", s.PasswordFile != ""}, {"passwordEnv", "--sasl-password-env", s.PasswordEnv != ""},
			{"jaasConfigFile", "--sasl-jaas-config-file", s.JaasConfigFile != ""},
		})
	}
	if pl := c.Kafka.SASL.Plugin; !pl.Enable {
		w = ignored(w, "kafka.sasl.plugin.", "the token plugin is off (--sasl-plugin-enable)", []setting{
			{"command", "--sasl-plugin-command", pl.Command != ""}, {"params", "--sasl-plugin-param", len(pl.Params) > 0},
		})
	}
	return w
}

// setting is one configuration field, by YAML path and flag, and whether
// it is set.
type setting struct {
	path, flag string
	set        bool
}

// ignored appends a warning for each set setting, which why disables.
func ignored(w []string, prefix, why string, settings []setting) []string {
	for _, f := range settings {
		if f.set {
			w = append(w, fmt.Sprintf("%s%s (%s) is ignored: %s", prefix, f.path, f.flag, why))
		}
	}
	return w
}

func noPasswords(p *Problems, s *SASL, method string) {
	if s.Username != "" || s.Password != "" || s.PasswordFile != "" || s.PasswordEnv != "" || s.JaasConfigFile != "" {
		p.add("kafka.sasl.method", "%s does not use username, password or JAAS settings", method)
	}
}

// String redacts secrets so the TLS settings can be logged.
func (t TLS) String() string {
	return fmt.Sprintf("enable=%v ca=%q cert=%q key=%q keyPassword=%s serverName=%q minVersion=%s refresh=%s",
		t.Enable, t.CAChainCertFile, t.ClientCertFile, t.ClientKeyFile, redact(t.ClientKeyPassword), t.ServerName, t.MinVersion, t.Refresh)
}

// String redacts secrets so the SASL settings can be logged.
func (s SASL) String() string {
	return fmt.Sprintf("enable=%v method=%s username=%q password=%s passwordFile=%q passwordEnv=%q jaas=%q",
		s.Enable, s.NormalizedMethod(), s.Username, redact(s.Password), s.PasswordFile, s.PasswordEnv, s.JaasConfigFile)
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}
