package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/users"
)

// run executes the command tree with stdin.
func runWithStdin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&out, &out, func(context.Context, config.Config, *slog.Logger) error { return nil })
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestUsersCommands(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.yaml")
	out, err := runWithStdin(t, "alice-secret\n", "users", "add", "--file", file, "--user", "alice", "--bcrypt-cost", "4")
	if err != nil || !strings.Contains(out, "added user alice (plain, scram-sha-256, scram-sha-512)") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	pwFile := filepath.Join(dir, "bob.pw")
	if err := os.WriteFile(pwFile, []byte("bob-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runWithStdin(t, "", "users", "add", "--file", file, "--user", "bob", "--password-file", pwFile, "--mechanisms", "scram-sha-512", "--iterations", "8192"); err != nil {
		t.Fatalf("add bob: %v\n%s", err, out)
	}
	out, err = runWithStdin(t, "", "users", "list", "--file", file)
	if err != nil || out != "alice\tplain,scram-sha-256,scram-sha-512\nbob\tscram-sha-512\n" {
		t.Fatalf("list: %v\n%q", err, out)
	}
	data, _ := os.ReadFile(file)
	if bytes.Contains(data, []byte("secret")) {
		t.Fatalf("the file holds a password:\n%s", data)
	}
	all, err := users.ReadFile(file, false)
	if err != nil || all["bob"].Scram["scram-sha-512"].Iterations != 8192 {
		t.Fatalf("bob's iterations: %v %+v", err, all["bob"])
	}
	s, err := users.Open(file, time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyPassword(context.Background(), "alice", "alice-secret"); err != nil {
		t.Errorf("alice's password from stdin: %v", err)
	}
	if out, err := runWithStdin(t, "", "users", "delete", "--file", file, "--user", "alice"); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if _, err := runWithStdin(t, "", "users", "delete", "--file", file, "--user", "alice"); err == nil {
		t.Error("deleting a missing user succeeded")
	}
	if out, _ := runWithStdin(t, "", "users", "list", "--file", file); out != "bob\tscram-sha-512\n" {
		t.Errorf("list after delete: %q", out)
	}
	for name, args := range map[string][]string{
		"no password":    {"users", "add", "--file", file, "--user", "carol"},
		"few iterations": {"users", "add", "--file", file, "--user", "carol", "--iterations", "1000"},
		"bad user":       {"users", "add", "--file", file, "--user", " carol"},
	} {
		stdin := "pw\n"
		if name == "no password" {
			stdin = ""
		}
		if _, err := runWithStdin(t, stdin, args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLocalAuthFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.yaml")
	got, out, err := execute(t, "server", "--bootstrap-server-mapping", baseMapping, "--auth-local-enable",
		"--auth-local-mechanism", "PLAIN,scram-sha-512", "--auth-local-users-file", file, "--auth-local-session-lifetime", "10m")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := config.LocalAuth{Enable: true, Mechanisms: []string{"PLAIN", "scram-sha-512"}, UsersFile: file, SessionLifetime: 10 * time.Minute}
	if l := got.Auth.Local; l.Enable != want.Enable || strings.Join(l.NormalizedMechanisms(), ",") != "PLAIN,SCRAM-SHA-512" || l.UsersFile != file || l.SessionLifetime != want.SessionLifetime {
		t.Errorf("auth.local = %+v", l)
	}
	if got, _, _ := execute(t, "server", "--bootstrap-server-mapping", baseMapping); strings.Join(got.Auth.Local.Mechanisms, ",") != "PLAIN" || got.Auth.Local.Enable {
		t.Errorf("defaults: %+v", got.Auth.Local)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	got, out, err = execute(t, "server", "--bootstrap-server-mapping", baseMapping, "--auth-local-enable", "--auth-local-mechanism", "OAUTHBEARER",
		"--auth-local-jwks-file", jwks, "--auth-local-jwt-issuer", "https://idp", "--auth-local-jwt-audience", "kafka",
		"--auth-local-jwt-principal-claim", "client_id", "--auth-local-jwt-clock-skew", "5s")
	if err != nil {
		t.Fatalf("oauthbearer flags: %v\n%s", err, out)
	}
	if j := got.Auth.Local.JWT; j.JWKSFile != jwks || j.Issuer != "https://idp" || j.Audience != "kafka" || j.PrincipalClaim != "client_id" || j.ClockSkew != 5*time.Second || j.JWKSRefresh != time.Hour {
		t.Errorf("auth.local.jwt = %+v", j)
	}
	for name, args := range map[string][]string{
		"oauthbearer without jwks":     {"--auth-local-enable", "--auth-local-mechanism", "OAUTHBEARER"},
		"two jwks sources":             {"--auth-local-enable", "--auth-local-mechanism", "OAUTHBEARER", "--auth-local-jwks-file", jwks, "--auth-local-jwks-url", "https://idp/jwks"},
		"jwks without oauthbearer":     {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-jwks-file", jwks},
		"users file without enable":    {"--auth-local-users-file", file},
		"enable without verifier":      {"--auth-local-enable"},
		"unknown mechanism":            {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-mechanism", "GSSAPI"},
		"users file, oauthbearer only": {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-mechanism", "OAUTHBEARER", "--auth-local-jwks-file", jwks},
		"negative lifetime":            {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-session-lifetime", "-1s"},
	} {
		if _, out, err := execute(t, append([]string{"server", "--bootstrap-server-mapping", baseMapping}, args...)...); err == nil || !strings.Contains(out+err.Error(), "auth.local") {
			t.Errorf("%s: %v %s", name, err, out)
		}
	}
}
