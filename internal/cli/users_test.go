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
	root := newRoot(&out, &out, func(context.Context, config.Config, *slog.Logger, *reloader) error { return nil })
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
	// The plugin flags as manifests for the proxy we replace write them
	// (values after a space, params repeated in order), and LDAP beside a
	// users file for SCRAM.
	got, out, err = execute(t, "server", "--bootstrap-server-mapping", baseMapping, "--auth-local-enable", "--auth-local-command", "/opt/plugins/auth-user",
		"--auth-local-param", "--username=alice", "--auth-local-param", "--password", "--auth-local-param", "secret", "--auth-local-timeout", "3s", "--auth-local-log-level", "info")
	if err != nil {
		t.Fatalf("plugin flags: %v\n%s", err, out)
	}
	if pl := got.Auth.Local.Plugin; pl.Command != "/opt/plugins/auth-user" || strings.Join(pl.Params, " ") != "--username=alice --password secret" || pl.Timeout != 3*time.Second || pl.LogLevel != "info" {
		t.Errorf("auth.local.plugin = %+v", pl)
	}
	if got, _, _ := execute(t, "server", "--bootstrap-server-mapping", baseMapping); got.Auth.Local.Plugin.Timeout != 10*time.Second || got.Auth.Local.Plugin.LogLevel != "trace" || !got.Auth.Local.LDAP.StartTLS || got.Auth.Local.LDAP.UserAttr != "uid" {
		t.Errorf("plugin and ldap defaults: %+v %+v", got.Auth.Local.Plugin, got.Auth.Local.LDAP)
	}
	got, out, err = execute(t, "server", "--bootstrap-server-mapping", baseMapping, "--auth-local-enable", "--auth-local-mechanism", "PLAIN,SCRAM-SHA-512",
		"--auth-local-users-file", file, "--auth-local-ldap-url", "ldaps://a:636,ldaps://b:636", "--auth-local-ldap-user-search-base", "dc=example,dc=com",
		"--auth-local-ldap-bind-dn", "cn=reader", "--auth-local-ldap-bind-password-file", file, "--auth-local-ldap-user-filter", "(mail=%s)",
		"--auth-local-ldap-start-tls=false", "--auth-local-ldap-ca-file", file, "--auth-local-ldap-user-attr", "cn", "--auth-local-ldap-upn-domain", "corp")
	if err != nil {
		t.Fatalf("ldap flags: %v\n%s", err, out)
	}
	if d := got.Auth.Local.LDAP; strings.Join(d.URLs, " ") != "ldaps://a:636 ldaps://b:636" || !d.Search() || d.StartTLS || d.UserAttr != "cn" || d.Filter != "(mail=%s)" || d.UPNDomain != "corp" || d.CAFile != file {
		t.Errorf("auth.local.ldap = %+v", d)
	}
	for name, args := range map[string][]string{
		"oauthbearer without jwks":      {"--auth-local-enable", "--auth-local-mechanism", "OAUTHBEARER"},
		"two jwks sources":              {"--auth-local-enable", "--auth-local-mechanism", "OAUTHBEARER", "--auth-local-jwks-file", jwks, "--auth-local-jwks-url", "https://idp/jwks"},
		"jwks without oauthbearer":      {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-jwks-file", jwks},
		"users file without enable":     {"--auth-local-users-file", file},
		"enable without verifier":       {"--auth-local-enable"},
		"unknown mechanism":             {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-mechanism", "GSSAPI"},
		"users file, oauthbearer only":  {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-mechanism", "OAUTHBEARER", "--auth-local-jwks-file", jwks},
		"negative lifetime":             {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-session-lifetime", "-1s"},
		"plugin for plain and oauth":    {"--auth-local-enable", "--auth-local-mechanism", "PLAIN,OAUTHBEARER", "--auth-local-command", "/bin/true"},
		"plugin for scram only":         {"--auth-local-enable", "--auth-local-mechanism", "SCRAM-SHA-256", "--auth-local-users-file", file, "--auth-local-command", "/bin/true"},
		"plugin and ldap for plain":     {"--auth-local-enable", "--auth-local-command", "/bin/true", "--auth-local-ldap-url", "ldap://x", "--auth-local-ldap-user-dn", "ou=x"},
		"plugin without enable":         {"--auth-local-command", "/bin/true"},
		"params without plugin":         {"--auth-local-enable", "--auth-local-users-file", file, "--auth-local-param", "--x"},
		"plugin log level":              {"--auth-local-enable", "--auth-local-command", "/bin/true", "--auth-local-log-level", "loud"},
		"plugin and users file":         {"--auth-local-enable", "--auth-local-command", "/bin/true", "--auth-local-users-file", file},
		"ldap without plain":            {"--auth-local-enable", "--auth-local-mechanism", "SCRAM-SHA-512", "--auth-local-users-file", file, "--auth-local-ldap-url", "ldap://x", "--auth-local-ldap-user-dn", "ou=x"},
		"ldap http url":                 {"--auth-local-enable", "--auth-local-ldap-url", "http://x", "--auth-local-ldap-user-dn", "ou=x"},
		"ldap without user dn":          {"--auth-local-enable", "--auth-local-ldap-url", "ldap://x"},
		"ldap filter without %s":        {"--auth-local-enable", "--auth-local-ldap-url", "ldap://x", "--auth-local-ldap-user-search-base", "ou=x", "--auth-local-ldap-user-filter", "(uid=x)"},
		"ldap bind dn without password": {"--auth-local-enable", "--auth-local-ldap-url", "ldap://x", "--auth-local-ldap-bind-dn", "cn=r"},
	} {
		if _, out, err := execute(t, append([]string{"server", "--bootstrap-server-mapping", baseMapping}, args...)...); err == nil || !strings.Contains(out+err.Error(), "auth.local") {
			t.Errorf("%s: %v %s", name, err, out)
		}
	}
}
