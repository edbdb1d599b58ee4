package cli

import (
	"github.com/spf13/pflag"
	"os"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// bindUpstreamFlags defines the broker-side TLS and SASL flags on fs. The
// names are those of the widely deployed kafka-proxy, so existing command
// lines keep working; the rest are additions with the same prefixes.
// Defaults come from k (config.Default() or the YAML), so `--help` shows
// effective values.
func bindUpstreamFlags(fs *pflag.FlagSet, k *config.Kafka) {
	t := &k.TLS
	fs.BoolVar(&t.Enable, "tls-enable", t.Enable, "Whether or not to use TLS when connecting to the broker")
	fs.StringVar(&t.CAChainCertFile, "tls-ca-chain-cert-file", t.CAChainCertFile, "PEM encoded CA's certificate file (roots and intermediates that sign the brokers' certificates)")
	fs.BoolVar(&t.SystemCertPool, "tls-system-cert-pool", t.SystemCertPool, "Use the system pool for root CAs (in addition to --tls-ca-chain-cert-file)")
	fs.StringVar(&t.ClientCertFile, "tls-client-cert-file", t.ClientCertFile, "PEM encoded file with client certificate (and chain) for mTLS")
	fs.StringVar(&t.ClientKeyFile, "tls-client-key-file", t.ClientKeyFile, "PEM encoded file with private key for the client certificate")
	fs.StringVar(&t.ClientKeyPassword, "tls-client-key-password", t.ClientKeyPassword, "Password to decrypt the client key (legacy Proc-Type: 4,ENCRYPTED PEM or encrypted PKCS#8)")
	fs.StringVar(&t.ClientKeyPasswordFile, "tls-client-key-password-file", t.ClientKeyPasswordFile, "File holding the password to decrypt the client key")
	fs.BoolVar(&t.InsecureSkipVerify, "tls-insecure-skip-verify", t.InsecureSkipVerify, "It controls whether a client verifies the server's certificate chain and host name")
	fs.BoolVar(&t.SameClientCertEnable, "tls-same-client-cert-enable", t.SameClientCertEnable, "Admit on the TLS listener only clients presenting the proxy's own upstream client certificate (--tls-client-cert-file); needs mTLS on both sides")
	fs.StringVar(&t.ServerName, "tls-server-name", t.ServerName, "Name to verify in the brokers' certificates instead of each broker's host")
	fs.StringVar(&t.MinVersion, "tls-min-version", t.MinVersion, "Minimum TLS version towards the brokers: 1.2 or 1.3")
	fs.StringSliceVar(&t.CipherSuites, "tls-cipher-suites", t.CipherSuites, "TLS 1.0-1.2 cipher suites by name, comma separated or repeated (default: Go's secure suites)")
	fs.DurationVar(&t.Refresh, "tls-refresh", t.Refresh, "Check the CA, certificate and key files this often and reload them when they change (0 disables)")

	s := &k.SASL
	fs.BoolVar(&s.Enable, "sasl-enable", s.Enable, "Connect using SASL")
	fs.StringVar(&s.Method, "sasl-method", s.Method, "SASL method: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM")
	fs.StringVar(&s.Username, "sasl-username", s.Username, "SASL user name")
	fs.StringVar(&s.Password, "sasl-password", s.Password, "SASL user password (prefer --sasl-password-file or --sasl-password-env)")
	fs.StringVar(&s.PasswordFile, "sasl-password-file", s.PasswordFile, "File holding the SASL password (re-read at every authentication)")
	fs.StringVar(&s.PasswordEnv, "sasl-password-env", s.PasswordEnv, "Name of the environment variable holding the SASL password")
	fs.StringVar(&s.JaasConfigFile, "sasl-jaas-config-file", s.JaasConfigFile, "Location of JAAS config file with SASL username and password (PlainLoginModule or ScramLoginModule)")
	fs.StringVar(&s.OAuth.TokenFile, "sasl-oauth-token-file", s.OAuth.TokenFile, "OAUTHBEARER: file holding the token, re-read when it changes")
	fs.StringVar(&s.OAuth.TokenCommand, "sasl-oauth-token-command", s.OAuth.TokenCommand, "OAUTHBEARER: shell command printing a token (optionally followed by an expiry line, or JSON)")
	fs.DurationVar(&s.OAuth.TokenCommandTimeout, "sasl-oauth-token-command-timeout", s.OAuth.TokenCommandTimeout, "OAUTHBEARER: how long the token command may run")
	fs.StringVar(&s.AWS.Region, "sasl-aws-region", s.AWS.Region, "AWS region for MSK IAM (OAUTHBEARER tokens, AWS_MSK_IAM fallback)")
	fs.StringVar(&s.AWS.Profile, "sasl-aws-profile", s.AWS.Profile, "AWS shared-config profile for MSK IAM credentials")
	fs.StringVar(&s.AWS.RoleARN, "sasl-aws-role-arn", s.AWS.RoleARN, "IAM role to assume for MSK IAM credentials")
	fs.BoolVar(&s.AWS.IdentityLookup, "sasl-aws-identity-lookup", s.AWS.IdentityLookup, "Verify the AWS identity at start: ask STS who the credentials are (GetCallerIdentity), log its ARN, fail if it cannot say")
	fs.StringVar(&s.AWS.RoleSessionName, "sasl-aws-role-session-name", s.AWS.RoleSessionName, "Session name when assuming --sasl-aws-role-arn")
	g := &s.GSSAPI
	fs.StringVar(&g.AuthType, "gssapi-auth-type", g.AuthType, "GSSAPI auth type: KEYTAB or USER")
	fs.StringVar(&g.ServiceName, "gssapi-servicename", g.ServiceName, "Kerberos service name of the brokers (the SPN is NAME/<broker host>)")
	fs.StringVar(&g.Username, "gssapi-username", g.Username, "Kerberos user (principal name without the realm)")
	if pw := os.Getenv("GSSAPI_PASSWORD"); pw != "" && g.Password == "" {
		g.Password = pw // the default, as in the proxy we replace
	}
	fs.StringVar(&g.Password, "gssapi-password", g.Password, "Password for auth type USER (default $GSSAPI_PASSWORD)")
	fs.StringVar(&g.Realm, "gssapi-realm", g.Realm, "Kerberos realm")
	fs.StringVar(&g.KerberosConfigPath, "gssapi-krb5", g.KerberosConfigPath, "krb5.conf file path")
	fs.StringVar(&g.KeytabPath, "gssapi-keytab", g.KeytabPath, "krb5.keytab file for auth type KEYTAB")
	fs.BoolVar(&g.DisablePAFXFAST, "gssapi-disable-pa-fx-fast", g.DisablePAFXFAST, "Do not use PA_FX_FAST (KDCs that offer FAST the client cannot use)")
	fs.StringToStringVar(&g.SPNHostsMapping, "gssapi-spn-host-mapping", g.SPNHostsMapping, "Mapping of broker hosts to the hosts in their SPNs, e.g. 127.0.0.1=localhost")
	pl := &s.Plugin
	fs.BoolVar(&pl.Enable, "sasl-plugin-enable", pl.Enable, "Authenticate to the brokers with OAUTHBEARER tokens from a token-provider plugin (instead of --sasl-enable)")
	fs.StringVar(&pl.Command, "sasl-plugin-command", pl.Command, "Token-provider plugin binary of the proxy we replace (net/rpc or gRPC form), or a built-in: google-id-provider or oidc-provider")
	fs.StringArrayVar(&pl.Params, "sasl-plugin-param", pl.Params, "Argument passed to --sasl-plugin-command (repeatable, in order)")
	fs.StringVar(&pl.Mechanism, "sasl-plugin-mechanism", pl.Mechanism, "SASL mechanism of the plugin's tokens: OAUTHBEARER")
	fs.StringVar(&pl.LogLevel, "sasl-plugin-log-level", pl.LogLevel, "Lowest level of the plugin's own log lines that are logged: trace, debug, info, warn, error or off")
	fs.DurationVar(&pl.Timeout, "sasl-plugin-timeout", pl.Timeout, "Bound on each plugin call (and its start)")
	fs.StringVar(&k.IdentityFile, "upstream-identity-file", k.IdentityFile, "YAML `FILE` mapping client principals to their own SASL user (password file) or client certificate towards the brokers")
	fs.BoolVar(&k.IdentityRequired, "upstream-identity-required", k.IdentityRequired, "Refuse clients whose principal --upstream-identity-file does not map (instead of using the default upstream identity)")
	// Alias of --kafka-reauth-min-lifetime under the SASL prefix.
	fs.DurationVar(&k.ReauthMinLifetime, "sasl-reauth-min-lifetime", k.ReauthMinLifetime, "Shortest interval between re-authentications (KIP-368) of one broker connection; a shorter broker session is still renewed before it expires, at 85–90% of its lifetime")
	_ = fs.MarkHidden("sasl-reauth-min-lifetime")
}
