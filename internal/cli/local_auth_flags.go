package cli

import (
	"github.com/spf13/pflag"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// bindLocalAuthFlags defines the local SASL flags (drop-in names).
func bindLocalAuthFlags(fs *pflag.FlagSet, l *config.LocalAuth) {
	fs.BoolVar(&l.Enable, "auth-local-enable", l.Enable, "Enable local SASL authentication: clients authenticate to the proxy before anything is forwarded")
	fs.StringSliceVar(&l.Mechanisms, "auth-local-mechanism", l.Mechanisms, "SASL mechanisms offered to clients, comma separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER")
	fs.DurationVar(&l.SessionLifetime, "auth-local-session-lifetime", l.SessionLifetime, "Client SASL session lifetime (Kafka's connections.max.reauth.ms): clients re-authenticate within it or are closed (0: no expiry)")
	j := &l.JWT
	fs.StringVar(&j.JWKSFile, "auth-local-jwks-file", j.JWKSFile, "OAUTHBEARER: JSON Web Key Set `FILE` whose keys sign client tokens (re-read when it changes)")
	fs.StringVar(&j.JWKSURL, "auth-local-jwks-url", j.JWKSURL, "OAUTHBEARER: JSON Web Key Set URL (https; http only to loopback), cached and fetched again every --auth-local-jwks-refresh and for an unknown key id")
	fs.StringVar(&j.JWKSCAFile, "auth-local-jwks-ca-file", j.JWKSCAFile, "PEM CA certificates for --auth-local-jwks-url instead of the system roots")
	fs.DurationVar(&j.JWKSRefresh, "auth-local-jwks-refresh", j.JWKSRefresh, "How often --auth-local-jwks-url is fetched again")
	fs.StringVar(&j.Issuer, "auth-local-jwt-issuer", j.Issuer, "OAUTHBEARER: required iss claim")
	fs.StringVar(&j.Audience, "auth-local-jwt-audience", j.Audience, "OAUTHBEARER: required aud value")
	fs.StringVar(&j.PrincipalClaim, "auth-local-jwt-principal-claim", j.PrincipalClaim, "OAUTHBEARER: claim naming the principal")
	fs.DurationVar(&j.ClockSkew, "auth-local-jwt-clock-skew", j.ClockSkew, "OAUTHBEARER: clock skew allowed on exp, nbf and iat")
	pl := &l.Plugin
	fs.StringVar(&pl.Command, "auth-local-command", pl.Command, "Plugin binary of the proxy we replace (net/rpc or gRPC form): a password authenticator for PLAIN or a token info for OAUTHBEARER")
	fs.StringArrayVar(&pl.Params, "auth-local-param", pl.Params, "Argument passed to --auth-local-command (repeatable, in order)")
	fs.DurationVar(&pl.Timeout, "auth-local-timeout", pl.Timeout, "Bound on each plugin or LDAP call; a plugin that does not answer in time is killed and started again")
	fs.StringVar(&pl.LogLevel, "auth-local-log-level", pl.LogLevel, "Lowest level of the plugin's own log lines that are logged: trace, debug, info, warn, error, off")
	d := &l.LDAP
	fs.StringSliceVar(&d.URLs, "auth-local-ldap-url", d.URLs, "PLAIN: LDAP servers, ldap:// or ldaps://, comma separated, tried in order")
	fs.StringVar(&d.UserDN, "auth-local-ldap-user-dn", d.UserDN, "PLAIN over LDAP: users bind as <user-attr>=<name>,<this DN>")
	fs.StringVar(&d.UserAttr, "auth-local-ldap-user-attr", d.UserAttr, "PLAIN over LDAP: attribute naming the user in its DN")
	fs.StringVar(&d.UPNDomain, "auth-local-ldap-upn-domain", d.UPNDomain, "PLAIN over LDAP: bind as <name>@<this domain> (Active Directory) instead of a DN")
	fs.BoolVar(&d.StartTLS, "auth-local-ldap-start-tls", d.StartTLS, "PLAIN over LDAP: upgrade ldap:// connections with StartTLS")
	fs.StringVar(&d.CAFile, "auth-local-ldap-ca-file", d.CAFile, "PEM CA certificates for the LDAP servers instead of the system roots")
	fs.BoolVar(&d.InsecureSkipVerify, "auth-local-ldap-insecure-skip-verify", d.InsecureSkipVerify, "Do not verify the LDAP servers' certificates (not for production)")
	fs.StringVar(&d.BindDN, "auth-local-ldap-bind-dn", d.BindDN, "PLAIN over LDAP: search users as this DN first")
	fs.StringVar(&d.BindPasswordFile, "auth-local-ldap-bind-password-file", d.BindPasswordFile, "`FILE` holding the bind DN's password")
	fs.StringVar(&d.SearchBase, "auth-local-ldap-user-search-base", d.SearchBase, "PLAIN over LDAP: search users under this DN (default: --auth-local-ldap-user-dn)")
	fs.StringVar(&d.Filter, "auth-local-ldap-user-filter", d.Filter, "PLAIN over LDAP: search filter, %s is the user name (default (<user-attr>=%s))")
	fs.StringVar(&l.UsersFile, "auth-local-users-file", l.UsersFile, "Users `FILE` for local SASL, written by kafka-proxy users add; changes apply without a restart")
}
