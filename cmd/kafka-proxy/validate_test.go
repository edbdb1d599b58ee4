package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

// TestValidateChecksFiles: validate does what server checks before it
// listens — files exist, keys decrypt, JAAS and ACL files parse, the audit
// log can be created — and lists every problem at once with a non-zero
// exit; with the files right, the same flags are valid.
func TestValidateChecksFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, err := certs.NewRoot("validate CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.IssueClient("orders", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := client.EncryptedKeyPEM(certs.PKCS8, []byte("right-password"))
	if err != nil {
		t.Fatal(err)
	}
	caFile := write("ca.crt", ca.CertPEM())
	certFile, keyFile := write("client.crt", client.ChainPEM()), write("client.key", key)
	jaas := write("jaas.conf", []byte(`KafkaClient { org.apache.kafka.common.security.scram.ScramLoginModule required username="orders" password="orders-secret"; };`))
	acls := write("acls.yaml", []byte("acls:\n  - principal: User:orders\n    resource: {type: topic, name: orders}\n    operation: Write\n"))
	badACLs := write("bad-acls.yaml", []byte("acls:\n  - principal: User:orders\n    resource: {type: topik, name: orders}\n    operation: Write\n"))

	args := func(ca, keyPassword, jaasFile, aclFile, audit string) []string {
		return []string{"validate", "--bootstrap-server-mapping", "kafka-0:9092,127.0.0.1:32400",
			"--tls-enable", "--tls-ca-chain-cert-file", ca, "--tls-client-cert-file", certFile, "--tls-client-key-file", keyFile,
			"--tls-client-key-password", keyPassword,
			"--sasl-enable", "--sasl-method", "SCRAM-SHA-512", "--sasl-jaas-config-file", jaasFile,
			"--acl-file", aclFile, "--audit-log", audit}
	}
	code, stdout, stderr := run(t, args(filepath.Join(dir, "missing-ca.crt"), "wrong-password", filepath.Join(dir, "missing-jaas.conf"), badACLs, filepath.Join(dir, "no-such-dir", "audit.log"))...)
	if code == 0 || strings.Contains(stdout, "configuration is valid") {
		t.Fatalf("validate with four problems: exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{"missing-ca.crt", "missing-jaas.conf", `"topik"`, "no-such-dir", "the configuration has 4 problems"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %s:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "wrong-password") || strings.Contains(stderr, "orders-secret") {
		t.Errorf("a secret reached the output:\n%s", stderr)
	}
	// The TLS problem stops at the missing CA; with the CA there, the
	// wrong key password is the problem.
	code, _, stderr = run(t, args(caFile, "wrong-password", jaas, acls, filepath.Join(dir, "audit.log"))...)
	if code == 0 || !strings.Contains(stderr, "password is incorrect") || strings.Contains(stderr, "wrong-password") {
		t.Errorf("wrong key password: exit %d:\n%s", code, stderr)
	}
	code, stdout, stderr = run(t, args(caFile, "right-password", jaas, acls, filepath.Join(dir, "audit.log"))...)
	if code != 0 || stdout != "configuration is valid\n" {
		t.Errorf("the right files: exit %d %q %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.log")); err == nil {
		t.Error("validate created the audit log")
	}
}
