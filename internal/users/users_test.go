package users

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
)

// lowCost keeps bcrypt fast in tests; the file records the cost used.
const lowCost = 4

func writeUsers(t *testing.T, path string, pw map[string]string) {
	t.Helper()
	all := map[string]User{}
	for name, p := range pw {
		u, err := NewUser(name, p, AllKinds, auth.MinScramIterations, lowCost)
		if err != nil {
			t.Fatal(err)
		}
		all[name] = u
	}
	if err := WriteFile(path, all); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTripAndPrivacy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	writeUsers(t, path, map[string]string{"alice": "alice-secret", "bob": "bob-secret"})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("secret")) {
		t.Fatalf("the file holds a password:\n%s", data)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || strings.Join(got["alice"].Kinds(), ",") != "plain,scram-sha-256,scram-sha-512" {
		t.Fatalf("parsed %+v", got)
	}
	again, err := Encode(got)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs (err %v):\n%s\nvs\n%s", err, again, data)
	}
}

func TestParseErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown key":    "users:\n- name: a\n  plian: x\n",
		"no credentials": "users:\n- name: a\n",
		"bad bcrypt":     "users:\n- name: a\n  plain: notahash\n",
		"few iterations": "users:\n- name: a\n  scram-sha-256: {salt: c2FsdA==, iterations: 100, storedKey: " + b64(32) + ", serverKey: " + b64(32) + "}\n",
		"short key":      "users:\n- name: a\n  scram-sha-512: {salt: c2FsdA==, iterations: 4096, storedKey: " + b64(32) + ", serverKey: " + b64(64) + "}\n",
		"empty name":     "users:\n- name: ''\n  plain: x\n",
		"control char":   "users:\n- name: \"a\\tb\"\n  plain: x\n",
		"duplicate":      "users:\n- name: a\n  scram-sha-256: {salt: c2FsdA==, iterations: 4096, storedKey: " + b64(32) + ", serverKey: " + b64(32) + "}\n- name: a\n  scram-sha-256: {salt: c2FsdA==, iterations: 4096, storedKey: " + b64(32) + ", serverKey: " + b64(32) + "}\n",
		"not yaml":       "users: [",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if u, err := Parse([]byte("# nothing yet\n")); err != nil || len(u) != 0 {
		t.Errorf("comments only: %v, %v", u, err)
	}
}

// b64 is n zero bytes in base64, a key of the right (or wrong) size.
func b64(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

func TestNewUserRefuses(t *testing.T) {
	if _, err := NewUser("a", strings.Repeat("x", 73), []string{KindPlain}, 4096, lowCost); err == nil {
		t.Error("a password bcrypt would truncate was accepted")
	}
	if _, err := NewUser("a", "pw", AllKinds, 1000, lowCost); err == nil {
		t.Error("1000 SCRAM iterations accepted")
	}
	if _, err := NewUser("a", "pw", []string{"md5"}, 4096, lowCost); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := NewUser("a", "", AllKinds, 4096, lowCost); err == nil {
		t.Error("empty password accepted")
	}
}

func TestStoreVerifiesAndReloads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "users.yaml")
	writeUsers(t, path, map[string]string{"alice": "alice-secret"})
	var logs bytes.Buffer
	s, err := Open(path, time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyPassword(ctx, "alice", "alice-secret"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := s.VerifyPassword(ctx, "alice", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := s.VerifyPassword(ctx, "bob", "x"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	c, err := s.LookupScram(ctx, auth.MechanismScramSHA512, "alice")
	if err != nil || len(c.StoredKey) != 64 {
		t.Fatalf("scram-sha-512: %v %+v", err, c)
	}
	if _, err := s.LookupScram(ctx, auth.MechanismScramSHA256, "bob"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("unknown scram user: %v", err)
	}

	// A new user is picked up at the next lookup after the interval.
	writeUsers(t, path, map[string]string{"alice": "alice-secret", "bob": "bob-secret"})
	time.Sleep(5 * time.Millisecond)
	if err := s.VerifyPassword(ctx, "bob", "bob-secret"); err != nil {
		t.Fatalf("added user: %v", err)
	}
	// A broken file keeps the users in force, and is logged once.
	if err := os.WriteFile(path, []byte("users: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		time.Sleep(5 * time.Millisecond)
		if err := s.VerifyPassword(ctx, "bob", "bob-secret"); err != nil {
			t.Fatalf("after a broken rewrite: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "users file not reloaded"); n != 1 {
		t.Errorf("broken file logged %d times, want 1:\n%s", n, logs.String())
	}
	// A deleted user is refused once the fixed file is back.
	writeUsers(t, path, map[string]string{"bob": "bob-secret"})
	time.Sleep(5 * time.Millisecond)
	if err := s.VerifyPassword(ctx, "alice", "alice-secret"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("deleted user: %v", err)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("a password reached the log:\n%s", logs.String())
	}
}

func TestOpenRefusesMissingOrBroken(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "none.yaml"), 0, nil); err == nil {
		t.Error("missing file opened")
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("users:\n- name: a\n"), 0o600)
	if _, err := Open(bad, 0, nil); err == nil {
		t.Error("broken file opened")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("users:\n- name: a\n  plain: $2a$04$abcdefghijklmnopqrstuu5Yy2lGv6pu0s1N2tLqE1vqE0B7Fq8yW\n"))
	f.Add([]byte("users:\n- name: a\n  scram-sha-256: {salt: c2FsdA==, iterations: 4096, storedKey: " + b64(32) + ", serverKey: " + b64(32) + "}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := Parse(data)
		if err != nil {
			return
		}
		enc, err := Encode(u)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(enc)
		if err != nil || len(back) != len(u) {
			t.Fatalf("re-parse: %v (%d vs %d users)", err, len(back), len(u))
		}
	})
}
