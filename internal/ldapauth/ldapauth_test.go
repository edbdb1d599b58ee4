package ldapauth

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/ldaptest"
)

var people = []ldaptest.Person{
	{UID: "alice", Password: "alice-secret", Mail: "alice@example.com"},
	{UID: "bob", Password: "bob-secret", Mail: "shared@example.com"},
	{UID: "carol", Password: "carol-secret", Mail: "shared@example.com"},
	{UID: "d,ave", Password: "dave-secret", Mail: "dave@example.com"},
}

// TestVerifierAgainstSlapd binds to a real OpenLDAP in each way the
// flags allow, with right and wrong passwords.
func TestVerifierAgainstSlapd(t *testing.T) {
	s := ldaptest.Start(t, people...)
	direct := Config{URLs: []string{s.URL}, UserDN: ldaptest.PeopleDN, Timeout: 5 * time.Second}
	cases := map[string]Config{
		"direct bind":      direct,
		"starttls":         with(direct, func(c *Config) { c.StartTLS, c.CAFile = true, s.CAFile }),
		"ldaps":            with(direct, func(c *Config) { c.URLs, c.CAFile = []string{s.LDAPSURL}, s.CAFile }),
		"search as reader": with(direct, func(c *Config) { c.Search, c.BindDN, c.BindPassword = true, ldaptest.ReaderDN, ldaptest.ReaderPass }),
		"search with filter": with(direct, func(c *Config) {
			c.Search, c.BindDN, c.BindPassword = true, ldaptest.ReaderDN, ldaptest.ReaderPass
			c.SearchBase, c.Filter = ldaptest.Suffix, "(&(objectClass=inetOrgPerson)(uid=%s))"
		}),
		"fail-over": with(direct, func(c *Config) { c.URLs = []string{"ldap://127.0.0.1:1", s.URL} }),
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, p := range people {
				if err := v.VerifyPassword(ctx, p.UID, p.Password); err != nil {
					t.Errorf("%s with the right password: %v", p.UID, err)
				}
				err := v.VerifyPassword(ctx, p.UID, p.Password+"x")
				if !errors.Is(err, auth.ErrInvalidCredentials) {
					t.Errorf("%s with a wrong password: %v, want ErrInvalidCredentials", p.UID, err)
				}
				if err != nil && strings.Contains(err.Error(), p.Password) {
					t.Errorf("the error names the password: %v", err)
				}
			}
			err = v.VerifyPassword(ctx, "mallory", "x")
			if !errors.Is(err, auth.ErrInvalidCredentials) && !errors.Is(err, auth.ErrUnknownUser) {
				t.Errorf("unknown user: %v", err)
			}
			// Injection: a filter or DN built from the name must not match
			// someone else.
			for _, evil := range []string{"*", "alice)(uid=*", "alice,ou=people", "uid=alice," + ldaptest.PeopleDN} {
				if err := v.VerifyPassword(ctx, evil, "alice-secret"); err == nil {
					t.Errorf("user %q authenticated as alice", evil)
				}
			}
			if err := v.VerifyPassword(ctx, "alice", ""); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("an empty password (unauthenticated bind): %v", err)
			}
		})
	}
}

// TestSearchAmbiguous refuses a filter that matches several entries, and
// a service account with a wrong password is a back-end failure, not the
// user's.
func TestSearchAmbiguous(t *testing.T) {
	s := ldaptest.Start(t, people...)
	cfg := Config{URLs: []string{s.URL}, UserDN: ldaptest.PeopleDN, Search: true, BindDN: ldaptest.ReaderDN,
		BindPassword: ldaptest.ReaderPass, Filter: "(mail=%s)", Timeout: 5 * time.Second}
	v, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyPassword(context.Background(), "alice@example.com", "alice-secret"); err != nil {
		t.Errorf("unique mail: %v", err)
	}
	if err := v.VerifyPassword(context.Background(), "shared@example.com", "bob-secret"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("a name matching two entries: %v", err)
	}
	cfg.BindPassword = "wrong"
	v, _ = New(cfg, nil)
	err = v.VerifyPassword(context.Background(), "alice@example.com", "alice-secret")
	if err == nil || errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrUnknownUser) {
		t.Errorf("broken service account: %v, want a back-end error", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error names the service password: %v", err)
	}
}

// TestTLSVerified: a server certificate that the CA file does not sign is
// refused, and so is StartTLS to a server that offers no TLS.
func TestTLSVerified(t *testing.T) {
	s := ldaptest.Start(t, people...)
	other := ldaptest.Start(t)
	v, err := New(Config{URLs: []string{s.LDAPSURL}, UserDN: ldaptest.PeopleDN, CAFile: other.CAFile, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = v.VerifyPassword(context.Background(), "alice", "alice-secret")
	if err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("a server certificate of another CA: %v", err)
	}
	v, _ = New(Config{URLs: []string{s.URL}, UserDN: ldaptest.PeopleDN, StartTLS: true, Timeout: 5 * time.Second}, nil)
	if err := v.VerifyPassword(context.Background(), "alice", "alice-secret"); err == nil {
		t.Error("StartTLS with the system roots accepted a private CA")
	}
}

// TestFailOverAndDeadServers: when the first server stops, the second
// answers; when all are gone, the error is a back-end failure within the
// timeout.
func TestFailOverAndDeadServers(t *testing.T) {
	a := ldaptest.Start(t, people...)
	b := ldaptest.Start(t, people...)
	v, err := New(Config{URLs: []string{a.URL, b.URL}, UserDN: ldaptest.PeopleDN, Timeout: 3 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.VerifyPassword(ctx, "alice", "alice-secret"); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	if err := v.VerifyPassword(ctx, "alice", "alice-secret"); err != nil {
		t.Fatalf("after the first server stopped: %v", err)
	}
	b.Stop()
	err = v.VerifyPassword(ctx, "alice", "alice-secret")
	if err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("no server: %v", err)
	}
}

// TestHungServer: a server that accepts and never answers costs the
// timeout, not more.
func TestHungServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	v, err := New(Config{URLs: []string{"ldap://" + l.Addr().String()}, UserDN: ldaptest.PeopleDN, Timeout: 500 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = v.VerifyPassword(context.Background(), "alice", "alice-secret")
	if err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("hung server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a hung server took %v, timeout 500ms", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no url":            {UserDN: "ou=x"},
		"http url":          {URLs: []string{"http://x"}, UserDN: "ou=x"},
		"no dn":             {URLs: []string{"ldap://x"}},
		"filter without %s": {URLs: []string{"ldap://x"}, UserDN: "ou=x", Search: true, Filter: "(uid=x)"},
		"missing ca":        {URLs: []string{"ldap://x"}, UserDN: "ou=x", CAFile: "/nonexistent"},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func with(c Config, f func(*Config)) Config {
	f(&c)
	return c
}
