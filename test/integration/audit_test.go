package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// auditLines reads the audit file's JSON lines.
func auditLines(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// waitAudit waits for a line whose fields include want.
func waitAudit(t *testing.T, file string, want map[string]any) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(file); err == nil {
		lines:
			for _, l := range auditLines(t, file) {
				for k, v := range want {
					if l[k] != v {
						continue lines
					}
				}
				return l
			}
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(file)
			t.Fatalf("no audit line with %v in:\n%s", want, data)
		}
	}
}

// TestAuditLog: authentications, an ACL denial and a refused connection,
// each a JSON line checked field by field; no secret in the file;
// reopened on SIGHUP after rotation.
func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	trail := filepath.Join(dir, "audit.log")
	users := kafkatest.WriteUsers(t, map[string]string{"alice": "alice-secret"})
	rules := tempWriter(t)("acls.yaml", []byte(aclClientRules))
	_, p := setup(t, func(cfg *config.Config) {
		cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalPlain}, UsersFile: users}
		cfg.ACL.Files, cfg.ACL.Refresh = []string{rules}, 0
		cfg.Audit.Log = trail
		cfg.Proxy.Admission.DenyCIDRs = []string{"127.0.0.2"}
	}, kfake.SeedTopics(1, "orders", "payments"))
	ctx := ctxT(t, 30*time.Second)

	bad := franzClient(t, p, kgo.SASL(plain.Auth{User: "alice", Pass: "wrong-secret"}.AsMechanism()), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_ = bad.Ping(pctx)
	cancel()
	fail := waitAudit(t, trail, map[string]any{"event": "auth-failure"})
	if l, _ := fail["listener"].(string); l != p.Bootstrap {
		t.Errorf("auth-failure listener %q, want %q", l, p.Bootstrap)
	}
	if c, _ := fail["client"].(string); !strings.HasPrefix(c, "127.0.0.1:") {
		t.Errorf("auth-failure client %q", c)
	}
	if r, _ := fail["reason"].(string); !strings.Contains(r, "alice") {
		t.Errorf("auth-failure reason %q does not name the user tried", r)
	}

	alice := franzClient(t, p, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()), kgo.RecordRetries(1))
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("x")}).FirstErr(); !isTopicDenied(err) {
		t.Fatalf("produce to payments: %v", err)
	}
	waitAudit(t, trail, map[string]any{"event": "auth-success", "principal": "User:alice", "mechanism": "PLAIN"})
	denied := waitAudit(t, trail, map[string]any{"event": "acl-denied", "principal": "User:alice", "resource_name": "payments"})
	for k, want := range map[string]any{"resource_type": "TOPIC", "operation": "DESCRIBE", "decision": "deny", "api_key": "Metadata", "mechanism": "PLAIN", "listener": p.Bootstrap} {
		if denied[k] != want {
			t.Errorf("acl-denied %s = %v, want %v", k, denied[k], want)
		}
	}
	if _, ok := denied["api_version"].(float64); !ok {
		t.Errorf("acl-denied has no api_version: %v", denied)
	}
	if _, err := time.Parse(time.RFC3339Nano, denied["time"].(string)); err != nil {
		t.Errorf("time %v: %v", denied["time"], err)
	}
	// Allowed requests are not recorded without --audit-log-allowed.
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, l := range auditLines(t, trail) {
		if l["event"] == "acl-allowed" {
			t.Errorf("allowed decision recorded: %v", l)
		}
	}

	served(t, dialFrom(t, p, "127.0.0.2"))
	rej := waitAudit(t, trail, map[string]any{"event": "connection-rejected"})
	if c, _ := rej["client"].(string); !strings.HasPrefix(c, "127.0.0.2:") {
		t.Errorf("connection-rejected client %q", c)
	}

	data, _ := os.ReadFile(trail)
	if bytes.Contains(data, []byte("secret")) {
		t.Fatalf("a password reached the audit log:\n%s", data)
	}

	// Rotation: the file is moved away, SIGHUP reopens it by name.
	if err := os.Rename(trail, trail+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(trail); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("audit log not reopened after SIGHUP")
		}
	}
	served(t, dialFrom(t, p, "127.0.0.2"))
	waitAudit(t, trail, map[string]any{"event": "connection-rejected"})
}
