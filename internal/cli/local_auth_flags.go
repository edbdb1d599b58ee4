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
	fs.StringVar(&l.UsersFile, "auth-local-users-file", l.UsersFile, "Users `FILE` for local SASL, written by kafka-proxy users add; changes apply without a restart")
}
