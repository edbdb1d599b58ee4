package cli

import (
	"github.com/spf13/pflag"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// bindListenerTLSFlags defines the client-facing TLS flags (drop-in names).
func bindListenerTLSFlags(fs *pflag.FlagSet, t *config.ListenerTLS) {
	fs.BoolVar(&t.Enable, "proxy-listener-tls-enable", t.Enable, "Whether or not to use TLS listener")
	fs.StringVar(&t.CertFile, "proxy-listener-cert-file", t.CertFile, "PEM encoded file with server certificate")
	fs.StringVar(&t.KeyFile, "proxy-listener-key-file", t.KeyFile, "PEM encoded file with private key for the server certificate")
	fs.StringVar(&t.KeyPassword, "proxy-listener-key-password", t.KeyPassword, "Password to decrypt the server key (legacy encrypted PEM or encrypted PKCS#8)")
	fs.StringVar(&t.CAChainCertFile, "proxy-listener-ca-chain-cert-file", t.CAChainCertFile, "PEM encoded CA's certificate file. If provided, client certificate is required and verified")
	fs.StringVar(&t.MinVersion, "proxy-listener-tls-min-version", t.MinVersion, "Minimum TLS version clients may use: 1.2 (default) or 1.3")
	fs.StringSliceVar(&t.CipherSuites, "proxy-listener-cipher-suites", t.CipherSuites, "List of supported cipher suites (TLS 1.2)")
	fs.StringSliceVar(&t.CurvePreferences, "proxy-listener-curve-preferences", t.CurvePreferences, "List of curve preferences, in order: X25519, X25519MLKEM768, P256, P384, P521 (default: Go's)")
	fs.StringArrayVar(&t.RequiredClientSubjects, "proxy-listener-tls-required-client-subject", t.RequiredClientSubjects, "Required client certificate subject, one per flag, repeatable (any one suffices): s:/CN=[client-1]/O=[org]/C=[DE,PL] exact values, r:/CN=[^client-.{2}$]/ patterns; fields CN, C, S, L, O, OU")
	fs.StringVar(&t.CRLFile, "proxy-listener-crl-file", t.CRLFile, "PEM encoded X509 CRLs file, signed by the client CA: revoked client certificates are refused")
	fs.DurationVar(&t.Refresh, "proxy-listener-tls-refresh", t.Refresh, "Check the listener's certificate, key, CA and CRL files this often and reload them when they change (0 disables)")
	fs.StringVar(&t.PrincipalMappingRules, "proxy-listener-principal-mapping-rules", t.PrincipalMappingRules, "Kafka's ssl.principal.mapping.rules for client certificates, e.g. 'RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT' (default DEFAULT: the subject DN); patterns are RE2")
}
