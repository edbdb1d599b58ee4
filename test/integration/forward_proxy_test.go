package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// sourceRecorder is a broker listener that records where each accepted
// connection comes from, so a test can prove which path reached it.
type sourceRecorder struct {
	net.Listener
	mu      sync.Mutex
	sources map[string]int // source IP -> connections
}

func (r *sourceRecorder) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err == nil {
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		r.mu.Lock()
		r.sources[host]++
		r.mu.Unlock()
	}
	return c, err
}

func (r *sourceRecorder) seen() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.sources {
		out[k] = v
	}
	return out
}

// recordedCluster is a kfake cluster whose brokers record connection
// sources.
func recordedCluster(t *testing.T) (*kfake.Cluster, []*sourceRecorder) {
	var (
		mu   sync.Mutex
		recs []*sourceRecorder
	)
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			r := &sourceRecorder{Listener: l, sources: map[string]int{}}
			mu.Lock()
			recs = append(recs, r)
			mu.Unlock()
			return r, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, recs
}

func freeLoopbackPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon runs argv in the foreground until the test ends and waits
// for it to listen on addr.
func startDaemon(t *testing.T, name, addr string, argv ...string) {
	t.Helper()
	bin, err := exec.LookPath(argv[0])
	requireTool(t, name, err)
	cmd := exec.Command(bin, argv[1:]...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %v\n%s", name, addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireTool skips a test whose external server is not installed, or
// fails it under the README's test command (KAFKA_PROXY_E2E set), as the
// HAProxy tests do.
func requireTool(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("KAFKA_PROXY_E2E") != "" {
		t.Fatalf("%s is not installed (scripts/install-test-deps.sh): %v", name, err)
	}
	t.Skipf("%s is not installed (scripts/install-test-deps.sh): %v", name, err)
}

// startDante runs Debian's dante-server as a SOCKS5 proxy on loopback whose
// outgoing connections leave from 127.0.0.2. With a user, it demands SOCKS5
// username authentication (RFC 1929), checked by PAM against a password
// file of the test's (pam_pwdfile; the service file in /etc/pam.d is
// removed when the test ends).
func startDante(t *testing.T, user, pass string) string {
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	conf := filepath.Join(dir, "danted.conf")
	method, rule := "none", ""
	if user != "" {
		method, rule = "pam.username", "\n  pam.servicename: "+pamService(t, dir, user, pass)+"\n"
	}
	body := fmt.Sprintf(`logoutput: %s
internal: 127.0.0.1 port = %d
external: 127.0.0.2
clientmethod: none
socksmethod: %s
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect %s}
`, filepath.Join(dir, "danted.log"), port, method, rule)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startDaemon(t, "dante-server (danted)", addr, "danted", "-f", conf, "-p", filepath.Join(dir, "danted.pid"))
	return addr
}

// pamService writes a PAM service that accepts user with pass, from a
// password file in dir, and returns its name.
func pamService(t *testing.T, dir, user, pass string) string {
	t.Helper()
	if found, _ := filepath.Glob("/usr/lib/*/security/pam_pwdfile.so"); len(found) == 0 {
		requireTool(t, "libpam-pwdfile", errors.New("no pam_pwdfile.so"))
	}
	hash, err := exec.Command("openssl", "passwd", "-6", pass).Output()
	if err != nil {
		requireTool(t, "openssl", err)
	}
	pwdfile := filepath.Join(dir, "socks-users")
	if err := os.WriteFile(pwdfile, []byte(user+":"+strings.TrimSpace(string(hash))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("kafka-proxy-test-socks-%d-%d", os.Getpid(), pamServices.Add(1))
	service := filepath.Join("/etc/pam.d", name)
	if err := os.WriteFile(service, []byte("auth required pam_pwdfile.so pwdfile="+pwdfile+"\naccount required pam_permit.so\n"), 0o644); err != nil {
		t.Skipf("cannot write a PAM service (%v): SOCKS5 username authentication not tested", err)
	}
	t.Cleanup(func() { _ = os.Remove(service) })
	return name
}

// pamServices tells apart the PAM services of one test process.
var pamServices atomic.Int64

// startTinyproxy runs Debian's tinyproxy as an HTTP CONNECT proxy on
// loopback with basic authentication, connecting out from 127.0.0.3.
func startTinyproxy(t *testing.T, user, pass string) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // tinyproxy writes as nobody
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	conf := filepath.Join(dir, "tinyproxy.conf")
	body := fmt.Sprintf(`User nobody
Group nogroup
Port %d
Listen 127.0.0.1
Bind 127.0.0.3
Timeout 600
MaxClients 100
LogLevel Info
Allow 127.0.0.1
BasicAuth %s %s
`, port, user, pass)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startDaemon(t, "tinyproxy", addr, "tinyproxy", "-d", "-c", conf)
	return addr
}

// TestForwardProxy: with --forward-proxy, every broker connection goes
// through a real SOCKS5 server (dante) or HTTP CONNECT proxy with basic
// auth (tinyproxy): the brokers see connections only from the forward
// proxy's outgoing address, never from the proxy's own, and clients
// produce and consume as usual. Wrong credentials fail with the forward
// proxy's answer in the log, never the password.
func TestForwardProxy(t *testing.T) {
	for _, tc := range []struct {
		name, via string
		start     func(t *testing.T) string
		url       func(addr string) string
	}{
		{"socks5", "127.0.0.2", func(t *testing.T) string { return startDante(t, "", "") }, func(a string) string { return "socks5://" + a }},
		{"socks5-username", "127.0.0.2", func(t *testing.T) string { return startDante(t, "kp", "tunnel-secret") },
			func(a string) string { return "socks5://kp:tunnel-secret@" + a }},
		{"http-connect", "127.0.0.3", func(t *testing.T) string { return startTinyproxy(t, "kp", "tunnel-secret") },
			func(a string) string { return "http://kp:tunnel-secret@" + a }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fwd := tc.start(t)
			c, recs := recordedCluster(t)
			p := kafkatest.StartProxy(t, c.ListenAddrs(), func(cfg *config.Config) { cfg.Kafka.ForwardProxy = tc.url(fwd) })
			ctx := ctxT(t, 60*time.Second)
			topic := "through-" + tc.name
			want := keyedValues(200)
			produceAll(ctx, t, franzClient(t, p, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation()), want)
			cons := franzClient(t, p, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := newSeen()
			for got.count() < len(want) && ctx.Err() == nil {
				cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got.add(string(r.Key), string(r.Value)) })
			}
			got.check(t, want, false)
			total := 0
			for i, r := range recs {
				for src, n := range r.seen() {
					if src != tc.via {
						t.Errorf("broker %d: %d connections from %s, not through the forward proxy (%s)", i, n, src, tc.via)
					}
					total += n
				}
			}
			if total == 0 {
				t.Error("the brokers saw no connection at all")
			}
			if strings.Contains(p.Logs.String(), "tunnel-secret") {
				t.Error("the forward proxy's password reached the log")
			}
		})
	}
	t.Run("socks5 wrong password", func(t *testing.T) {
		fwd := startDante(t, "kp", "tunnel-secret")
		c, _ := recordedCluster(t)
		p := kafkatest.StartProxy(t, c.ListenAddrs(), func(cfg *config.Config) {
			cfg.Kafka.ForwardProxy = "socks5://kp:wrong-secret@" + fwd
		})
		ctx := ctxT(t, 10*time.Second)
		if err := franzClient(t, p, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)).Ping(ctx); err == nil {
			t.Fatal("served through a SOCKS5 proxy that refused the credentials")
		}
		if !p.Logs.WaitFor(5*time.Second, "cannot reach broker", "socks", "username/password authentication failed") {
			t.Errorf("no log line with the SOCKS5 refusal:\n%s", p.Logs.String())
		}
		if strings.Contains(p.Logs.String(), "wrong-secret") {
			t.Error("the forward proxy's password reached the log")
		}
	})
	t.Run("http-connect wrong password", func(t *testing.T) {
		fwd := startTinyproxy(t, "kp", "tunnel-secret")
		c, _ := recordedCluster(t)
		p := kafkatest.StartProxy(t, c.ListenAddrs(), func(cfg *config.Config) {
			cfg.Kafka.ForwardProxy = "http://kp:wrong-secret@" + fwd
		})
		ctx := ctxT(t, 10*time.Second)
		if err := franzClient(t, p, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)).Ping(ctx); err == nil {
			t.Fatal("served through a forward proxy that refused the credentials")
		}
		if !p.Logs.WaitFor(5*time.Second, "CONNECT", "refused: 401 Unauthorized") {
			t.Errorf("no log line with the forward proxy's refusal:\n%s", p.Logs.String())
		}
		if strings.Contains(p.Logs.String(), "wrong-secret") {
			t.Error("the forward proxy's password reached the log")
		}
	})
}
