package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// Environment variables that steer the suite.
const (
	// envStrict turns a missing client tool into a failure (CI sets it).
	envStrict = "KAFKA_PROXY_E2E"
	// envRequireNetns fails the suite when the isolating namespace cannot be made.
	envRequireNetns = "KAFKA_PROXY_E2E_REQUIRE_NETNS"
	// envBinary uses a prebuilt kafka-proxy binary instead of building one.
	envBinary = "KAFKA_PROXY_E2E_BINARY"
	// envRace builds the proxy with -race (always so under go test -race);
	// a reported race fails the run.
	envRace = "KAFKA_PROXY_E2E_RACE"
)

const (
	buildTimeout   = 5 * time.Minute
	readyTimeout   = 60 * time.Second
	clientTimeout  = 90 * time.Second
	stopTimeout    = 15 * time.Second
	installHint    = "run scripts/install-test-deps.sh (as root or with sudo)"
	systemPython   = "/usr/bin/python3" // Debian's python3-confluent-kafka / python3-kafka live here
	recordsPerTest = 1000
)

// suite is the shared state: one namespace and one plaintext demo per
// package run; tests of other upstream security modes start their own demos
// (target) with the same binary, listening on the same IP.
type suite struct {
	dir      string // test/e2e
	bin      string // the kafka-proxy under test
	listenIP string
	ns       *netns // nil in loopback fallback mode
	warning  string // logged by every test when set
	plain    *target
	tmp      string
}

// target is one running `kafka-proxy demo` the clients are pointed at.
type target struct {
	mode      string        // --upstream-security
	lifetime  time.Duration // --session-lifetime (0: sessions do not expire)
	pace      time.Duration // spread each client's produce (and linger) over this long
	demo      *demoProc
	bootstrap string // host:port of the proxy's first listener
	basePort  int
	// sasl, when set, is how the clients authenticate to the proxy
	// (--auth-local-*); suffix is added to their topic and group names, so
	// runs against one target do not share them.
	sasl   *clientSASL
	suffix string
	// caFile, when set, makes the clients speak TLS to the proxy
	// (SASL_SSL) and trust this CA.
	caFile string
	// advertised, when set, are the broker addresses metadata must list
	// (else the demo's listeners at basePort+i).
	advertised []string
}

// clientSASL is a client's SASL mechanism and credentials (for
// OAUTHBEARER, password is the token).
type clientSASL struct{ mechanism, user, password string }

// kcatArgs are kcat's (librdkafka's) options for tg.sasl and tg.caFile.
func (tg *target) kcatArgs() []string {
	var tls []string
	if tg.caFile != "" {
		tls = []string{"-X", "ssl.ca.location=" + tg.caFile, "-X", "ssl.endpoint.identification.algorithm=https"}
	}
	if tg.sasl == nil {
		if tls == nil {
			return nil
		}
		return append([]string{"-X", "security.protocol=SSL"}, tls...)
	}
	args := append([]string{"-X", "security.protocol=SASL_PLAINTEXT"}, tls...)
	if tls != nil {
		args[1] = "security.protocol=SASL_SSL"
	}
	if tg.sasl.mechanism == "OAUTHBEARER" {
		// kcat cannot be given a token: librdkafka's only built-in source
		// is an unsecured JWT (alg "none"), which the proxy must refuse.
		return append(args, "-X", "sasl.mechanisms=OAUTHBEARER",
			"-X", "enable.sasl.oauthbearer.unsecure.jwt=true", "-X", "sasl.oauthbearer.config=principal="+tg.sasl.user)
	}
	return append(args, "-X", "sasl.mechanisms="+tg.sasl.mechanism,
		"-X", "sasl.username="+tg.sasl.user, "-X", "sasl.password="+tg.sasl.password)
}

// withEnv runs argv with tg.sasl and tg.caFile in the environment the
// client programs read (KAFKA_SASL_*, KAFKA_SSL_CA_FILE), plus extra
// variables.
func (tg *target) withEnv(argv []string, extra ...string) []string {
	if tg.sasl == nil && tg.caFile == "" && len(extra) == 0 {
		return argv
	}
	env := []string{"env"}
	if tg.sasl != nil {
		env = append(env, "KAFKA_SASL_MECHANISM="+tg.sasl.mechanism, "KAFKA_SASL_USERNAME="+tg.sasl.user, "KAFKA_SASL_PASSWORD="+tg.sasl.password)
	}
	if tg.caFile != "" {
		env = append(env, "KAFKA_SSL_CA_FILE="+tg.caFile)
	}
	return append(append(env, extra...), argv...)
}

var (
	setupOnce sync.Once
	shared    *suite
	setupErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.teardown(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: e2e teardown: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// env returns the shared suite, setting it up on first use, so a run in which
// every test skips (no client tools) never builds or starts anything.
// A failed test gets the plaintext demo's output in its log.
func env(t *testing.T) *suite {
	t.Helper()
	s := suiteFor(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafka-proxy demo output (last 80 lines):\n%s", s.plain.demo.out.tail(80))
		}
	})
	return s
}

// suiteFor is env for tests that start their own demo (startTarget) and log
// its output themselves.
func suiteFor(t *testing.T) *suite {
	t.Helper()
	setupOnce.Do(func() { shared, setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("e2e setup: %v", setupErr)
	}
	if shared.warning != "" {
		t.Log("WARNING: " + shared.warning)
	}
	return shared
}

func setup() (_ *suite, err error) {
	s := &suite{}
	if s.dir, err = os.Getwd(); err != nil {
		return nil, err
	}
	if s.tmp, err = os.MkdirTemp("", "kafka-proxy-e2e-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = s.teardown()
		}
	}()

	s.bin = os.Getenv(envBinary)
	if s.bin == "" {
		s.bin = filepath.Join(s.tmp, "kafka-proxy")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		err := kafkatest.BuildProxy(ctx, s.bin, raceBuild || os.Getenv(envRace) == "1", "")
		cancel()
		if err != nil {
			return nil, err
		}
	}

	s.listenIP = "127.0.0.1"
	ns, nsErr := createNetns()
	switch {
	case nsErr == nil:
		s.ns = ns
		s.listenIP = ns.hostIP
	case os.Getenv(envRequireNetns) == "1":
		return nil, fmt.Errorf("%s=1 but the network namespace could not be created: %w", envRequireNetns, nsErr)
	default:
		s.warning = fmt.Sprintf("no network namespace (%v): clients run on loopback and "+
			"could bypass the proxy unnoticed; set %s=1 to make this fatal", nsErr, envRequireNetns)
		fmt.Fprintln(os.Stderr, "e2e: WARNING: "+s.warning)
	}

	if s.plain, err = s.startTarget("plaintext", 0, 0); err != nil {
		return nil, err
	}
	return s, nil
}

// startTarget starts a demo whose brokers demand mode from the proxy, with
// SASL sessions expiring after lifetime (0: never). Secure demos log at
// debug level, so tests can see each connection's re-authentications.
func (s *suite) startTarget(mode string, lifetime, pace time.Duration, extra ...string) (_ *target, err error) {
	tg := &target{mode: mode, lifetime: lifetime, pace: pace}
	args := extra
	if mode != "plaintext" {
		args = append(args, "--upstream-security", mode, "--log-level", "debug")
	}
	if lifetime > 0 {
		args = append(args, "--session-lifetime", lifetime.String())
	}
	// The port is picked before the demo binds it, so another process can
	// take it in between: retry a few times on a failed start.
	for attempt := 1; ; attempt++ {
		if tg.basePort, err = freePortRange(s.listenIP, 3); err != nil {
			return nil, err
		}
		tg.demo, err = startDemo(s.bin, s.listenIP, tg.basePort, args...)
		if err == nil || attempt == 3 {
			break
		}
		fmt.Fprintf(os.Stderr, "e2e: %s demo start attempt %d failed, retrying: %v\n", mode, attempt, err)
	}
	if err != nil {
		return nil, err
	}
	tg.bootstrap = tg.demo.bootstrap
	if tg.bootstrap == "" {
		tg.bootstrap = net.JoinHostPort(s.listenIP, strconv.Itoa(tg.basePort))
	}
	return tg, nil
}

func (s *suite) teardown() error {
	var errs []error
	if s.plain != nil {
		errs = append(errs, s.plain.demo.stop())
		s.plain = nil
	}
	if s.ns != nil {
		s.ns.remove()
		s.ns = nil
	}
	if s.tmp != "" {
		errs = append(errs, os.RemoveAll(s.tmp))
	}
	return errors.Join(errs...)
}

// freePortRange finds base such that base..base+n-1 are all free on ip.
func freePortRange(ip string, n int) (int, error) {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("listen on %s: %w", ip, err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		ok := base+n-1 <= 65535
		for i := 1; ok && i < n; i++ {
			li, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, li)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports on %s", n, ip)
}

// lockedBuffer collects a process's output for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) tail(n int) string { return tailLines(l.String(), n) }

// demoProc is the `kafka-proxy demo` subprocess.
type demoProc struct {
	cmd       *exec.Cmd
	out       *lockedBuffer
	bootstrap string
	brokers   []string // the cluster's real addresses, if the demo prints them
	exited    chan struct{}
	waitErr   error
	stopOnce  sync.Once
	stopErr   error
}

func startDemo(bin, ip string, port int, extra ...string) (*demoProc, error) {
	d := &demoProc{out: &lockedBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"demo",
		"--listen-ip", ip,
		"--port", strconv.Itoa(port),
		"--http-listen-address", "127.0.0.1:0"}, extra...)...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.cmd.Stderr = d.out
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s demo: %w", bin, err)
	}

	ready := make(chan string, 1) // bootstrap address (may be "")
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		bootstrap, sent := "", false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(d.out, line)
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "proxy bootstrap server:"); ok {
				bootstrap = strings.TrimSpace(rest)
			}
			// Not part of the contract; used when present to prove the
			// namespace cannot reach the brokers.
			// "kafka-proxy demo: 3-broker in-memory cluster at a:1,b:2,c:3"
			if _, rest, ok := strings.Cut(line, "in-memory cluster at "); ok && strings.HasPrefix(line, "kafka-proxy demo:") && !sent {
				d.brokers = strings.Split(strings.TrimSpace(rest), ",")
			}
			if !sent && strings.TrimSpace(line) == "ready" {
				ready <- bootstrap
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-scanDone // Wait must follow the last read of StdoutPipe
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()

	select {
	case d.bootstrap = <-ready:
		return d, nil
	case <-d.exited:
		return nil, fmt.Errorf("kafka-proxy demo exited before printing \"ready\" (%v); output:\n%s", d.waitErr, d.out.tail(80))
	case <-time.After(readyTimeout):
		_ = d.stop()
		return nil, fmt.Errorf("kafka-proxy demo printed no \"ready\" line within %s; output:\n%s", readyTimeout, d.out.tail(80))
	}
}

// stop sends SIGTERM and waits; the demo contract is a clean exit 0. Only if
// it does not stop in time is its process group killed. A panic or a data
// race report anywhere in the demo's output is an error too. Later calls
// return the first call's result.
func (d *demoProc) stop() error {
	d.stopOnce.Do(func() {
		err := d.terminate()
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(d.out.String(), bad) {
				err = errors.Join(err, fmt.Errorf("kafka-proxy demo output contains %q:\n%s", bad, d.out.String()))
				break
			}
		}
		d.stopErr = err
	})
	return d.stopErr
}

func (d *demoProc) terminate() error {
	select {
	case <-d.exited:
		return fmt.Errorf("kafka-proxy demo had already exited (%v); output:\n%s", d.waitErr, d.out.tail(40))
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.waitErr != nil {
			return fmt.Errorf("kafka-proxy demo did not exit 0 on SIGTERM: %v; output:\n%s", d.waitErr, d.out.tail(40))
		}
		return nil
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		return fmt.Errorf("kafka-proxy demo did not stop within %s of SIGTERM; killed; output:\n%s", stopTimeout, d.out.tail(40))
	}
}

// requireTool skips (or, with KAFKA_PROXY_E2E=1, fails) when a client is missing.
func requireTool(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not available (%v): %s", what, err, installHint)
	if os.Getenv(envStrict) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// probe runs a short command that checks a tool is installed.
func probe(dir string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLine(string(out)))
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// result is what a client process did.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("exit: %v\n--- stdout ---\n%s\n--- stderr ---\n%s", r.err, tailLines(r.stdout, 60), tailLines(r.stderr, 60))
}

// tailLines keeps the last n lines of s, noting how many were dropped, after
// collapsing runs of identical lines (clients repeat the same error a lot).
func tailLines(s string, n int) string {
	var lines []string
	repeat := 0
	flush := func() {
		if repeat > 0 {
			lines = append(lines, fmt.Sprintf("[... previous line repeated %d more times]", repeat))
			repeat = 0
		}
	}
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if len(lines) > 0 && line == lines[len(lines)-1] {
			repeat++
			continue
		}
		flush()
		lines = append(lines, line)
	}
	flush()
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d earlier lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// clientCmd builds a command for a client, wrapped to run inside the
// namespace, in its own process group so a timeout kills all of it.
func (s *suite) clientCmd(ctx context.Context, argv ...string) *exec.Cmd {
	argv = s.ns.wrap(argv)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "KAFKAJS_NO_PARTITIONER_WARNING=1", "PYTHONUNBUFFERED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a client to completion (bounded by ctx) with stdin as input.
func (s *suite) run(ctx context.Context, stdin string, argv ...string) result {
	return s.runReader(ctx, strings.NewReader(stdin), argv...)
}

// runReader is run with stdin read from r as the client consumes it.
func (s *suite) runReader(ctx context.Context, stdin io.Reader, argv ...string) result {
	cmd := s.clientCmd(ctx, argv...)
	var out, errb bytes.Buffer
	cmd.Stdin = stdin
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return result{stdout: out.String(), stderr: errb.String(), err: err}
}

// runUntil runs a client that does not stop by itself and feeds each stdout
// line to done; once done returns true and linger more has passed, the
// client is sent SIGTERM (a clean shutdown: a group consumer leaves its
// group) and, if need be, killed.
func (s *suite) runUntil(ctx context.Context, linger time.Duration, done func(line string) bool, argv ...string) (result, bool) {
	cmd := s.clientCmd(ctx, argv...)
	var out, errb lockedBuffer
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return result{err: err}, false
	}
	if err := cmd.Start(); err != nil {
		return result{err: err}, false
	}
	exited := make(chan struct{})
	finished := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(&out, line)
		if !finished && done(line) {
			finished = true
			go func() {
				select {
				case <-time.After(linger):
				case <-exited:
					return
				}
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				select {
				case <-time.After(10 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				case <-exited: // do not signal a process group that may be gone
				}
			}()
		}
	}
	err = cmd.Wait()
	close(exited)
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return result{stdout: out.String(), stderr: errb.String(), err: err}, finished
}
