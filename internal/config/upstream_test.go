package config

import (
	"slices"
	"strings"
	"testing"
)

// TestValidateUpstream checks every broker-side TLS/SASL problem is
// reported with its YAML path.
func TestValidateUpstream(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Kafka)
		want []string
	}{
		{"defaults", func(*Kafka) {}, nil},
		{"bad method", func(k *Kafka) { k.SASL.Enable, k.SASL.Method = true, "FOO" },
			[]string{`kafka.sasl.method: "FOO" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, AWS_MSK_IAM`}},
		{"plain without credentials", func(k *Kafka) { k.SASL.Enable = true },
			[]string{"kafka.sasl.username: is required for PLAIN", "kafka.sasl.password: is required for PLAIN"}},
		{"lower-case method", func(k *Kafka) { k.SASL = SASL{Enable: true, Method: "scram-sha-512", Username: "u", PasswordEnv: "PW"} }, nil},
		{"two password sources", func(k *Kafka) {
			k.SASL = SASL{Enable: true, Method: "PLAIN", Username: "u", Password: "p", PasswordFile: "/f"}
		}, []string{"kafka.sasl.password: set only one of password, passwordFile and passwordEnv"}},
		{"jaas and username", func(k *Kafka) { k.SASL = SASL{Enable: true, Method: "PLAIN", Username: "u", JaasConfigFile: "/j"} },
			[]string{"kafka.sasl.jaasConfigFile: is an alternative to username/password"}},
		{"oauth without source", func(k *Kafka) { k.SASL.Enable, k.SASL.Method = true, "OAUTHBEARER" },
			[]string{"kafka.sasl.oauth: OAUTHBEARER needs a token source"}},
		{"oauth two sources", func(k *Kafka) {
			k.SASL.Enable, k.SASL.Method, k.SASL.OAuth.TokenFile, k.SASL.OAuth.TokenCommand = true, "OAUTHBEARER", "/t", "cat /t"
		}, []string{"kafka.sasl.oauth: set only one of tokenFile and tokenCommand"}},
		{"msk iam oauth", func(k *Kafka) { k.SASL.Enable, k.SASL.Method, k.SASL.AWS.Region = true, "OAUTHBEARER", "eu-west-1" }, nil},
		{"aws with password", func(k *Kafka) { k.SASL.Enable, k.SASL.Method, k.SASL.Password = true, "AWS_MSK_IAM", "p" },
			[]string{"kafka.sasl.method: AWS_MSK_IAM does not use username, password or JAAS settings"}},
		{"credentials while disabled: a warning", func(k *Kafka) { k.SASL.Username = "u" }, nil},
		{"tls problems", func(k *Kafka) {
			k.TLS = TLS{Enable: true, MinVersion: "1.4", CipherSuites: []string{"NOPE"}, ClientCertFile: "/c", ClientKeyPassword: "x", Refresh: -1}
		}, []string{
			`kafka.tls.minVersion: "1.4" is not a TLS version`,
			`kafka.tls.cipherSuites: "NOPE" is unknown`,
			"kafka.tls.refresh: must not be negative",
			"kafka.tls.clientKeyFile: is required with clientCertFile",
			"kafka.tls.clientKeyPassword: is set but there is no clientKeyFile",
		}},
		{"tls files while disabled: a warning", func(k *Kafka) { k.TLS.CAChainCertFile = "/ca" }, nil},
		{"negative reauth floor", func(k *Kafka) { k.ReauthMinLifetime = -1 }, []string{"kafka.reauthMinLifetime: must not be negative"}},
		{"forward proxy scheme", func(k *Kafka) { k.ForwardProxy = "ftp://u:hidden-pw@proxy:21" },
			[]string{"kafka.forwardProxy: ftp://u:xxxxx@proxy:21: scheme must be socks5 or http"}},
		{"forward proxy without port", func(k *Kafka) { k.ForwardProxy = "socks5://proxy" }, []string{"kafka.forwardProxy: socks5://proxy: "}},
		{"forward proxy ok", func(k *Kafka) { k.ForwardProxy = "http://u:p@proxy.corp:3128" }, nil},
		{"same client cert without mTLS", func(k *Kafka) { k.TLS.SameClientCertEnable = true },
			[]string{"kafka.tls.sameClientCertEnable: needs TLS on the proxy's listeners"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.edit(&cfg.Kafka)
			var p Problems
			cfg.validateUpstream(&p)
			for _, want := range tc.want {
				if !slices.ContainsFunc(p, func(s string) bool { return strings.HasPrefix(s, want) }) {
					t.Errorf("missing problem %q in %q", want, p)
				}
			}
			if len(p) != len(tc.want) {
				t.Errorf("problems = %q, want %d", p, len(tc.want))
			}
		})
	}
}

func TestUpstreamYAMLAndRedaction(t *testing.T) {
	cfg := Default()
	err := Decode([]byte(`
kafka:
  tls:
    enable: true
    caChainCertFile: /ca.pem
    clientCertFile: /c.pem
    clientKeyFile: /k.pem
    clientKeyPassword: hunter2
    cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
    refresh: 1m
  sasl:
    enable: true
    method: OAUTHBEARER
    password: ""
    oauth: {tokenCommand: "print-token", tokenCommandTimeout: 3s}
    aws: {region: eu-west-1, roleArn: "arn:aws:iam::1:role/r"}
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.TLS.MinVersion != "1.2" || cfg.Kafka.SASL.OAuthSource() != "command" || cfg.Kafka.SASL.AWS.RoleSessionName != "kafka-proxy" {
		t.Fatalf("decoded %+v", cfg.Kafka)
	}
	if s := cfg.Kafka.TLS.String(); strings.Contains(s, "hunter2") {
		t.Fatalf("TLS.String leaks the key password: %s", s)
	}
	if err := Decode([]byte("kafka:\n  sasl:\n    pasword: x\n"), &cfg); err == nil {
		t.Fatal("unknown key accepted")
	}
	var probs Problems
	cfg.validateUpstream(&probs)
	if len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
}

// Settings the proxy we replace ignores without their switch are accepted
// with a warning naming the setting, its flag and the switch.
func TestUpstreamWarnings(t *testing.T) {
	c := Default()
	c.Kafka.TLS.CAChainCertFile, c.Kafka.TLS.ServerName = "/ca.pem", "b.example"
	c.Kafka.SASL.Username, c.Kafka.SASL.PasswordFile = "u", "/pw"
	want := []string{
		"kafka.tls.caChainCertFile (--tls-ca-chain-cert-file) is ignored: TLS to the brokers is off (--tls-enable)",
		"kafka.tls.serverName (--tls-server-name) is ignored: TLS to the brokers is off (--tls-enable)",
		"kafka.sasl.username (--sasl-username) is ignored: SASL to the brokers is off (--sasl-enable)",
		"kafka.sasl.passwordFile (--sasl-password-file) is ignored: SASL to the brokers is off (--sasl-enable)",
	}
	if got := c.Warnings(); !slices.Equal(got, want) {
		t.Errorf("warnings %q\nwant %q", got, want)
	}
	c.Kafka.TLS.Enable = true
	c.Kafka.SASL.Enable = true
	if got := c.Warnings(); len(got) != 0 {
		t.Errorf("enabled: warnings %q", got)
	}
}
