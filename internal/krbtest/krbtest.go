// Package krbtest starts a real MIT Kerberos KDC (Debian's krb5-kdc) on
// loopback for the GSSAPI tests: a throw-away realm with the principals a
// test adds, keytabs exported from it, and a krb5.conf pointing at it.
package krbtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Realm is the test realm's name.
const Realm = "KAFKA-PROXY.TEST"

// KDC is a running krb5kdc.
type KDC struct {
	// Krb5Conf is a krb5.conf for clients of this realm (TCP only).
	Krb5Conf string
	dir      string
	env      []string
}

// Start runs krb5kdc on a loopback port until t ends. A machine without
// it skips t, unless KAFKA_PROXY_E2E is set (the full test run installs
// it), where a missing KDC is a failure.
func Start(t testing.TB) *KDC {
	t.Helper()
	for _, tool := range []string{"/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local"} {
		if _, err := os.Stat(tool); err != nil {
			if os.Getenv("KAFKA_PROXY_E2E") != "" {
				t.Fatalf("%s is not installed (scripts/install-test-deps.sh installs krb5-kdc and krb5-admin-server): %v", tool, err)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	k := &KDC{dir: dir, Krb5Conf: filepath.Join(dir, "krb5.conf")}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	enc := "aes256-cts-hmac-sha1-96"
	write("krb5.conf", fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_realm = false
 dns_lookup_kdc = false
 udp_preference_limit = 1
 default_tkt_enctypes = %[3]s
 default_tgs_enctypes = %[3]s
 permitted_enctypes = %[3]s
[realms]
 %[1]s = {
  kdc = 127.0.0.1:%[2]d
 }
`, Realm, port, enc))
	write("kdc.conf", fmt.Sprintf(`[kdcdefaults]
 kdc_ports = %[2]d
 kdc_tcp_ports = %[2]d
[realms]
 %[1]s = {
  database_name = %[3]s/principal
  key_stash_file = %[3]s/stash
  acl_file = %[3]s/kadm5.acl
  kdc_ports = %[2]d
  kdc_tcp_ports = %[2]d
  max_life = 1h
  supported_enctypes = %[4]s:normal
 }
[logging]
 kdc = FILE:%[3]s/kdc.log
`, Realm, port, dir, enc))
	write("kadm5.acl", "")
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.Krb5Conf, "KRB5_KDC_PROFILE="+filepath.Join(dir, "kdc.conf"))
	k.run(t, "/usr/sbin/kdb5_util", "create", "-s", "-r", Realm, "-P", "master-"+fmt.Sprint(time.Now().UnixNano()))
	cmd := exec.Command("/usr/sbin/krb5kdc", "-n", "-r", Realm, "-P", filepath.Join(dir, "kdc.pid"))
	cmd.Env = k.env
	out, _ := os.Create(filepath.Join(dir, "krb5kdc.out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("krb5kdc: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		out.Close()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "krb5kdc.out"))
			t.Fatalf("krb5kdc exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("krb5kdc not listening on %d", port)
		}
	}
	return k
}

func (k *KDC) run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = k.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// AddUser adds principal (in the realm) with password.
func (k *KDC) AddUser(t testing.TB, principal, password string) {
	t.Helper()
	k.run(t, "/usr/sbin/kadmin.local", "-r", Realm, "-q", fmt.Sprintf("addprinc -pw %s %s", password, principal))
}

// AddService adds principal with a random key and returns a keytab with
// it (what a broker, or a keytab-authenticated client, is given).
func (k *KDC) AddService(t testing.TB, principal string) string {
	t.Helper()
	k.run(t, "/usr/sbin/kadmin.local", "-r", Realm, "-q", "addprinc -randkey "+principal)
	path := filepath.Join(k.dir, strings.NewReplacer("/", "_", "@", "_").Replace(principal)+".keytab")
	k.run(t, "/usr/sbin/kadmin.local", "-r", Realm, "-q", fmt.Sprintf("ktadd -k %s %s", path, principal))
	return path
}
