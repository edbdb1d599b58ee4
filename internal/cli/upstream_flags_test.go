package cli

import (
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// TestUpstreamFlags parses a drop-in command line of the widely deployed
// kafka-proxy plus the additions, and checks slice flags are SliceValues
// (the CLI copies them over YAML with Replace).
func TestUpstreamFlags(t *testing.T) {
	k := config.Default().Kafka
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	bindUpstreamFlags(fs, &k)
	err := fs.Parse([]string{
		"--tls-enable", "--tls-ca-chain-cert-file", "/ca.pem", "--tls-client-cert-file", "/c.pem",
		"--tls-client-key-file", "/k.pem", "--tls-client-key-password", "pw", "--tls-insecure-skip-verify",
		"--tls-system-cert-pool", "--tls-same-client-cert-enable", "--tls-refresh", "1m", "--tls-server-name", "b.example", "--tls-min-version", "1.3",
		"--tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "--tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"--sasl-enable", "--sasl-method", "SCRAM-SHA-512", "--sasl-username", "u", "--sasl-password-file", "/pw",
		"--sasl-jaas-config-file", "/j", "--sasl-oauth-token-file", "/t", "--sasl-oauth-token-command", "tok",
		"--sasl-aws-region", "eu-west-1", "--sasl-aws-profile", "p", "--sasl-aws-role-arn", "arn:r",
		"--sasl-password-env", "PW", "--sasl-reauth-min-lifetime", "1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	tl, s := k.TLS, k.SASL
	if !tl.Enable || tl.CAChainCertFile != "/ca.pem" || tl.ClientKeyPassword != "pw" || !tl.InsecureSkipVerify || !tl.SystemCertPool || !tl.SameClientCertEnable ||
		tl.Refresh != time.Minute || tl.ServerName != "b.example" || tl.MinVersion != "1.3" || len(tl.CipherSuites) != 2 {
		t.Errorf("tls = %+v", tl)
	}
	if !s.Enable || s.Method != "SCRAM-SHA-512" || s.Username != "u" || s.PasswordFile != "/pw" || s.PasswordEnv != "PW" ||
		s.JaasConfigFile != "/j" || s.OAuth.TokenFile != "/t" || s.OAuth.TokenCommand != "tok" ||
		s.AWS != (config.AWS{Region: "eu-west-1", Profile: "p", RoleARN: "arn:r", RoleSessionName: "kafka-proxy"}) || k.ReauthMinLifetime != time.Second {
		t.Errorf("sasl = %+v", s)
	}
	sv, ok := fs.Lookup("tls-cipher-suites").Value.(pflag.SliceValue)
	if !ok {
		t.Fatal("--tls-cipher-suites is not a SliceValue")
	}
	if err := sv.Replace([]string{"X"}); err != nil || !slices.Equal(k.TLS.CipherSuites, []string{"X"}) {
		t.Errorf("Replace: %v %v", err, k.TLS.CipherSuites)
	}
	if err := fs.Parse([]string{"--tls-refresh=30s"}); err != nil || k.TLS.Refresh != 30*time.Second {
		t.Errorf("--tls-refresh=30s: %v %v", err, k.TLS.Refresh)
	}
}
