package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// TestConfigCommand: `kafka-proxy config` prints the effective
// configuration as YAML that --config reads back to the same settings,
// with the secrets redacted.
func TestConfigCommand(t *testing.T) {
	args := []string{"--bootstrap-server-mapping", baseMapping, "--tls-enable", "--tls-ca-chain-cert-file", "/etc/ca.pem",
		"--sasl-enable", "--sasl-username", "svc", "--sasl-password", "top-secret", "--kafka-read-timeout", "45s"}
	want, _, err := execute(t, append([]string{"server"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := execute(t, append([]string{"config"}, args...)...)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, out)
	}
	if strings.Contains(out, "top-secret") || !strings.Contains(out, "[redacted]") {
		t.Fatalf("the password is not redacted:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "effective.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := config.Load(path)
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
	}
	// The same settings (an empty list and none print alike).
	back.Kafka.SASL.Password = want.Kafka.SASL.Password // the one thing redacted
	if got, w := back.YAML(), want.YAML(); got != w {
		t.Errorf("the printed configuration loads as\n%s\nwant\n%s", got, w)
	}
	if back.Kafka.ReadTimeout != want.Kafka.ReadTimeout || back.Kafka.TLS.CAChainCertFile != "/etc/ca.pem" {
		t.Errorf("settings lost on the way: %+v", back.Kafka)
	}
}
