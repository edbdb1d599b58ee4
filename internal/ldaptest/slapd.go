// Package ldaptest starts a real OpenLDAP server (Debian's slapd) on
// loopback for tests of the LDAP verifier: a throw-away directory with
// people, a service account for searches, and LDAP, LDAPS and StartTLS on
// a certificate of its own CA.
package ldaptest

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

// The directory's layout.
const (
	Suffix     = "dc=example,dc=com"
	PeopleDN   = "ou=people," + Suffix
	ServiceDN  = "ou=services," + Suffix
	ReaderDN   = "cn=reader," + ServiceDN
	ReaderPass = "reader-secret"
	rootDN     = "cn=admin," + Suffix
)

// Person is an entry under PeopleDN: uid=UID, mail=Mail.
type Person struct {
	UID, Password, Mail string
}

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:port (StartTLS offered), LDAPSURL
	// ldaps://127.0.0.1:port.
	URL, LDAPSURL string
	// CAFile is the PEM CA that signed the server's certificate.
	CAFile string
	cmd    *exec.Cmd
	done   chan struct{}
}

// Start runs slapd with people in the directory until t ends. A machine
// without slapd skips t, unless KAFKA_PROXY_E2E is set (the full test
// run, which installs it), where a missing server is a failure.
func Start(t testing.TB, people ...Person) *Server {
	t.Helper()
	slapd := "/usr/sbin/slapd"
	if _, err := os.Stat(slapd); err != nil {
		if os.Getenv("KAFKA_PROXY_E2E") != "" {
			t.Fatalf("slapd is not installed (scripts/install-test-deps.sh installs it): %v", err)
		}
		t.Skip("slapd is not installed: run scripts/install-test-deps.sh")
	}
	dir := t.TempDir()
	caFile := writeCerts(t, dir)
	conf := filepath.Join(dir, "slapd.conf")
	write(t, conf, config(dir))
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	ldif := filepath.Join(dir, "data.ldif")
	write(t, ldif, entries(people))
	if out, err := exec.Command("/usr/sbin/slapadd", "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		s, err := start(dir, conf, caFile)
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		if attempt == 2 {
			t.Fatal(err)
		}
	}
}

// start runs slapd on two free ports and waits until it accepts.
func start(dir, conf, caFile string) (*Server, error) {
	plain, tlsPort := freePort(), freePort()
	s := &Server{
		URL:      fmt.Sprintf("ldap://127.0.0.1:%d", plain),
		LDAPSURL: fmt.Sprintf("ldaps://127.0.0.1:%d", tlsPort),
		CAFile:   caFile,
		done:     make(chan struct{}),
	}
	logFile, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// -d keeps slapd in the foreground, so it is our child and stops with us.
	s.cmd = exec.Command("/usr/sbin/slapd", "-f", conf, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "256")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start slapd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("slapd exited: %s", log)
		default:
		}
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "ldap://"), time.Second); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("slapd did not listen on %s within 10s", s.URL)
}

func (s *Server) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Stop ends slapd now, for fail-over tests.
func (s *Server) Stop() { s.stop() }

func config(dir string) string {
	return strings.NewReplacer("DIR", dir, "SUFFIX", Suffix, "ROOTDN", rootDN).Replace(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile DIR/slapd.pid
argsfile DIR/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile DIR/ca.pem
TLSCertificateFile DIR/server.pem
TLSCertificateKeyFile DIR/server.key
database mdb
maxsize 16777216
suffix "SUFFIX"
rootdn "ROOTDN"
rootpw admin-secret
directory DIR/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none
`)
}

// entries is the directory as LDIF, passwords as {SSHA}, as slappasswd
// writes them.
func entries(people []Person) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n", Suffix)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: people\n\n", PeopleDN)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: services\n\n", ServiceDN)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: %s\n\n", ReaderDN, ssha(ReaderPass))
	for _, p := range people {
		fmt.Fprintf(&b, "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s\nuserPassword: %s\n\n",
			ldap.EscapeDN(p.UID), PeopleDN, p.UID, p.UID, p.UID, p.Mail, ssha(p.Password))
	}
	return b.String()
}

func ssha(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	sum := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

func writeCerts(t testing.TB, dir string) string {
	t.Helper()
	ca, err := certs.NewRoot("ldaptest CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer("127.0.0.1", []string{"127.0.0.1", "localhost"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	write(t, caFile, string(ca.CertPEM()))
	write(t, filepath.Join(dir, "server.pem"), string(srv.ChainPEM()))
	write(t, filepath.Join(dir, "server.key"), string(srv.KeyPEM()))
	return caFile
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
