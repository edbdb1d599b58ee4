package cli

import (
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// TestListenerTLSFlags: the replaced proxy's listener TLS flags, and the
// principal mapping rules, land in config with their meaning.
func TestListenerTLSFlags(t *testing.T) {
	var l config.ListenerTLS
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	bindListenerTLSFlags(fs, &l)
	err := fs.Parse([]string{
		"--proxy-listener-tls-enable", "--proxy-listener-cert-file", "/c.pem", "--proxy-listener-key-file", "/k.pem",
		"--proxy-listener-ca-chain-cert-file", "/ca.pem", "--proxy-listener-crl-file", "/crl.pem", "--proxy-listener-tls-refresh", "1m",
		"--proxy-listener-curve-preferences", "X25519,P256", "--proxy-listener-tls-required-client-subject", "s:/CN=[a]/C=[DE,PL]",
		"--proxy-listener-tls-required-client-subject", "r:/O=[^b$]",
		"--proxy-listener-principal-mapping-rules", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Enable || l.CRLFile != "/crl.pem" || l.Refresh != time.Minute || !slices.Equal(l.CurvePreferences, []string{"X25519", "P256"}) ||
		!slices.Equal(l.RequiredClientSubjects, []string{"s:/CN=[a]/C=[DE,PL]", "r:/O=[^b$]"}) || l.PrincipalMappingRules != "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT" {
		t.Errorf("listener tls = %+v", l)
	}
	if err := fs.Parse([]string{"--proxy-listener-tls-refresh=10s"}); err != nil || l.Refresh != 10*time.Second {
		t.Errorf("--proxy-listener-tls-refresh=10s: %v %v", err, l.Refresh)
	}
}
