package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretValue is what a $(VAR) from a Secret expands to in these tests,
// and the password of the encrypted client keys below.
const secretValue = "from-secret"

// mountRoot stands for /etc/kafka-proxy: a directory per volume the
// manifests mount, holding what the Secrets and ConfigMaps they name would
// hold, so that kafka-proxy validate checks the files as it would in the
// pod (certificates parse and match their keys, keys decrypt, the JAAS
// file, users file and ACL files load).
func mountRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	ca := filepath.Join(root, "ca")
	if err := os.Mkdir(ca, 0o700); err != nil {
		t.Fatal(err)
	}
	openssl(t, ca, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
		"-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.crt",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	issue := func(name, cn, ext string) {
		openssl(t, ca, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN="+cn,
			"-keyout", name+".key", "-out", name+".csr")
		if err := os.WriteFile(filepath.Join(ca, name+".ext"), []byte(ext), 0o600); err != nil {
			t.Fatal(err)
		}
		openssl(t, ca, "x509", "-req", "-in", name+".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
			"-days", "2", "-extfile", name+".ext", "-out", name+".crt")
	}
	issue("client", "orders", "extendedKeyUsage=clientAuth\n")
	issue("server", "kafka-gateway", "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:kafka-gateway.kafka.svc\n")
	openssl(t, ca, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "client.key", "-out", "client.enc.key", "-passout", "pass:"+secretValue)

	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(ca, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	users := filepath.Join(ca, "users.yaml")
	cmd := exec.Command(proxyBin, "users", "add", "--file", users, "--user", "alice")
	cmd.Stdin = strings.NewReader("alice-secret\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("users add: %v\n%s", err, out)
	}
	jaas := `KafkaClient {
  org.apache.kafka.common.security.scram.ScramLoginModule required
  username="orders"
  password="orders-secret";
};
`
	kafkaUser := `apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaUser
metadata:
  name: orders
spec:
  authentication: {type: scram-sha-512}
  authorization:
    type: simple
    acls:
      - resource: {type: topic, name: orders, patternType: literal}
        operations: [Read, Write, Describe]
`
	for _, dir := range []string{"tls", "sasl", "upstream", "upstream-tls", "upstream-sasl", "listener", "listener-tls", "users", "acls"} {
		d := filepath.Join(root, dir)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{
			"ca.crt": read("ca.crt"), "jaas.conf": []byte(jaas), "users.yaml": read("users.yaml"),
			"user.crt": read("client.crt"), "user.key": read("client.key"),
			"key-password": []byte(secretValue + "\n"), "user.password": []byte(secretValue + "\n"),
			// A client key is encrypted (its password comes from a
			// Secret); a listener's is not (no flag gives one here).
			"tls.crt": read("client.crt"), "tls.key": read("client.enc.key"),
		}
		if strings.Contains(dir, "listener") {
			files["tls.crt"], files["tls.key"] = read("server.crt"), read("server.key")
		}
		if dir == "acls" {
			files = map[string][]byte{"orders.yaml": []byte(kafkaUser)}
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(d, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inPod rewrites the paths the manifests mount under /etc/kafka-proxy to
// the same files under root.
func inPod(args []string, root string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "/etc/kafka-proxy/", root+"/")
	}
	return out
}
