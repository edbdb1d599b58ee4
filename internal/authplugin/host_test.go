package authplugin

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/authplugin/plugintest"
	"github.com/kafka-proxy/kafka-proxy/internal/logbuf"
)

func TestMain(m *testing.M) {
	code := m.Run()
	plugintest.Remove()
	os.Exit(code)
}

func forms() map[string][]string {
	return map[string][]string{"net/rpc": nil, "grpc": {"--grpc"}}
}

func starts(t *testing.T, dir string) int {
	t.Helper()
	e, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

// TestPasswordPlugin: right and wrong passwords in both forms; a crash
// and a hang fail only their own call, and the plugin is started again.
func TestPasswordPlugin(t *testing.T) {
	bin := plugintest.Binary(t)
	for name, extra := range forms() {
		t.Run(name, func(t *testing.T) {
			pids := t.TempDir()
			h, err := NewHost(PasswordAuthenticator, Config{Command: bin, Timeout: time.Second,
				Params: append([]string{"--username", "alice", "--password", "alice-secret", "--pid-dir", pids}, extra...)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if want := map[string]string{"net/rpc": "netrpc", "grpc": "grpc"}[name]; h.Protocol() != want {
				t.Fatalf("protocol %s, want %s", h.Protocol(), want)
			}
			v := NewPasswords(h)
			ctx := context.Background()
			if err := v.VerifyPassword(ctx, "alice", "alice-secret"); err != nil {
				t.Fatalf("right password: %v", err)
			}
			if err := v.VerifyPassword(ctx, "alice", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("wrong password: %v", err)
			}
			if err := v.VerifyPassword(ctx, "crash", "x"); !errors.Is(err, ErrPlugin) || errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("crashing plugin: %v", err)
			}
			time.Sleep(restartEvery) // the next start is not throttled
			if err := v.VerifyPassword(ctx, "alice", "alice-secret"); err != nil {
				t.Fatalf("after a crash: %v", err)
			}
			start := time.Now()
			if err := v.VerifyPassword(ctx, "hang", "x"); !errors.Is(err, ErrPlugin) {
				t.Fatalf("hanging plugin: %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("a hanging plugin took %v with a 1s timeout", d)
			}
			time.Sleep(restartEvery)
			if err := v.VerifyPassword(ctx, "alice", "alice-secret"); err != nil {
				t.Fatalf("after a hang: %v", err)
			}
			if n := starts(t, pids); n != 3 {
				t.Fatalf("%d plugin starts, want 3 (first, after the crash, after the hang)", n)
			}
			// Concurrent calls share one process.
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := v.VerifyPassword(ctx, "alice", "alice-secret"); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if n := starts(t, pids); n != 3 {
				t.Fatalf("%d plugin starts after concurrent calls, want 3", n)
			}
		})
	}
}

func jwtWith(payload, signature string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + "." + signature
}

// TestTokenPlugin: the plugin decides, the token's claim names the
// principal, and its exp ends the session.
func TestTokenPlugin(t *testing.T) {
	bin := plugintest.Binary(t)
	for name, extra := range forms() {
		t.Run(name, func(t *testing.T) {
			h, err := NewHost(TokenInfo, Config{Command: bin, Timeout: time.Second, Params: append([]string{"--kind", "token", "--token-signature", "good"}, extra...)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			v := NewTokens(h, "client_id")
			ctx := context.Background()
			exp := time.Now().Add(time.Hour).Truncate(time.Second)
			p, e, err := v.VerifyToken(ctx, jwtWith(`{"client_id":"svc-a","exp":`+strconv.FormatInt(exp.Unix(), 10)+`}`, "good"))
			if err != nil || p != "svc-a" || !e.Equal(exp) {
				t.Fatalf("good token: %q %v %v", p, e, err)
			}
			var te *auth.TokenError
			if _, _, err := v.VerifyToken(ctx, jwtWith(`{"client_id":"svc-a"}`, "bad")); !errors.As(err, &te) {
				t.Fatalf("refused token: %v", err)
			}
			if _, _, err := v.VerifyToken(ctx, jwtWith(`{"sub":"svc-a"}`, "good")); err == nil {
				t.Fatal("a token without the principal claim was accepted")
			}
			if _, _, err := v.VerifyToken(ctx, jwtWith(`{"client_id":"svc-a","exp":1}`, "good")); err == nil {
				t.Fatal("an expired token was accepted")
			}
			if _, _, err := v.VerifyToken(ctx, "crash"); err == nil {
				t.Fatal("a crashed plugin accepted")
			}
		})
	}
}

// TestBrokenPlugins: a command that is not there, exits at once or is a
// plugin of another kind fails at start, with a reason.
func TestBrokenPlugins(t *testing.T) {
	bin := plugintest.Binary(t)
	for name, c := range map[string]struct {
		kind Kind
		cfg  Config
	}{
		"missing":            {PasswordAuthenticator, Config{Command: "/nonexistent/plugin"}},
		"exits":              {PasswordAuthenticator, Config{Command: "/bin/true"}},
		"other kind":         {TokenInfo, Config{Command: bin}},
		"bad level":          {PasswordAuthenticator, Config{Command: bin, LogLevel: "loud"}},
		"junk line":          {PasswordAuthenticator, Config{Command: script(t, `echo "hello world"; sleep 30`)}},
		"silent":             {PasswordAuthenticator, Config{Command: script(t, `sleep 30`)}},
		"version 2":          {PasswordAuthenticator, Config{Command: script(t, `echo "1|2|unix|/tmp/x|grpc"; sleep 30`)}},
		"auto mTLS":          {PasswordAuthenticator, Config{Command: script(t, `echo "1|1|tcp|127.0.0.1:1|grpc|MIIBcert"; sleep 30`)}},
		"no grpc listener":   {PasswordAuthenticator, Config{Command: script(t, `echo "1|1|unix|/nonexistent/sock|grpc"; sleep 30`)}},
		"no netrpc listener": {PasswordAuthenticator, Config{Command: script(t, `echo "1|1|unix|/nonexistent/sock|netrpc"; sleep 30`)}},
	} {
		c.cfg.Timeout = 2 * time.Second
		start := time.Now()
		h, err := NewHost(c.kind, c.cfg, nil)
		if err == nil {
			h.Close()
			t.Errorf("%s: started", name)
			continue
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%s: failed after %v with a 2s timeout", name, d)
		}
		t.Logf("%s: %v", name, err)
	}
}

// script is an executable shell script standing in for a broken plugin.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plugin.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPluginLog: the plugin's hclog JSON lines reach the proxy's log at
// their own level, filtered by the configured level; other lines are
// logged as they are; "off" drops them all.
func TestPluginLog(t *testing.T) {
	plugin := script(t, `echo '{"@level":"debug","@message":"dbg line","k":"v"}' >&2
echo '{"@level":"error","@message":"err line","code":7}' >&2
echo 'plain line' >&2
exit 1`)
	for _, c := range []struct {
		level string
		want  []string
		not   []string
	}{
		{"trace", []string{"plugin: dbg line", "k=v", "plugin: err line", "code=7", "plugin: plain line"}, nil},
		{"error", []string{"plugin: err line"}, []string{"dbg line", "plain line"}},
		{"off", nil, []string{"dbg line", "err line", "plain line"}},
	} {
		var out logbuf.Buffer
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
		if _, err := NewHost(PasswordAuthenticator, Config{Command: plugin, Timeout: 2 * time.Second, LogLevel: c.level}, log); err == nil {
			t.Fatalf("%s: a plugin that exits started", c.level)
		}
		got := out.String()
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("level %s: no %q in\n%s", c.level, w, got)
			}
		}
		for _, n := range c.not {
			if strings.Contains(got, n) {
				t.Errorf("level %s: %q logged:\n%s", c.level, n, got)
			}
		}
		if c.level == "error" && !strings.Contains(got, "level=ERROR msg=\"plugin: err line\"") {
			t.Errorf("the plugin's error line is not logged as an error:\n%s", got)
		}
	}
}
