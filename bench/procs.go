package main

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
	"time"
	"unsafe"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// noFileLimit is the descriptor limit the bench and its children ask for:
// 10,000 proxied connections are 20,000 descriptors in the proxy alone.
const noFileLimit = 65536

// raiseNoFile lifts RLIMIT_NOFILE (the hard limit too, where the process
// may) so the connection phases are not capped by a default of 1024. An
// explicit Setrlimit also makes Go pass the raised limit on to children.
func raiseNoFile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	want := l
	if want.Max < noFileLimit {
		want.Max = noFileLimit
	}
	want.Cur = want.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return
	}
	l.Cur = l.Max // not privileged: the soft limit up to the hard one
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

// noFileCur is the current soft descriptor limit.
func noFileCur() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	return l.Cur
}

// clockTick is USER_HZ, the unit of utime/stime in /proc/<pid>/stat; it is
// 100 on every Linux architecture Go supports.
const clockTick = 100

// procCPU is the CPU time a process has used so far (all its threads). It
// reads the process's CPU clock (nanoseconds, the scheduler's own
// accounting), so a phase of a few thousand small requests is measured
// exactly, and falls back to /proc's 10 ms ticks where that clock is
// refused.
func procCPU(pid int) (time.Duration, error) {
	if d, ok := processClock(pid); ok {
		return d, nil
	}
	return procStatCPU(pid)
}

// processClock reads pid's CPU-time clock: clock_gettime on the clock id
// Linux derives from a pid (CPUCLOCK_SCHED of the whole process).
func processClock(pid int) (time.Duration, bool) {
	const cpuClockSched = 2
	id := (^uintptr(pid))<<3 | cpuClockSched
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// procStatCPU is user+system time from /proc/<pid>/stat, in 10 ms ticks.
func procStatCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// procRSS is a process's resident set size in bytes (VmRSS).
func procRSS(pid int) (int64, error) { return procStatusKB(pid, "VmRSS:") }

// procPeakRSS is a process's peak resident set size in bytes (VmHWM) since
// it started or since resetPeakRSS.
func procPeakRSS(pid int) (int64, error) { return procStatusKB(pid, "VmHWM:") }

// resetPeakRSS sets a process's VmHWM back to its current RSS (Linux 4.0+),
// so that a phase's peak is its own.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// procStatusKB reads one "<field> <n> kB" line of /proc/<pid>/status, in
// bytes.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, strings.TrimSuffix(field, ":"))
}

// child is a process the bench started, and only such processes are ever
// signalled.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line
	stderr *tailBuffer
	addrs  []string // what the child listens on, one per broker
	exited chan struct{}
	// signalled: the child does not read stdin (kafka-proxy), stop
	// sends SIGTERM at once.
	signalled bool

	ctlMu sync.Mutex
}

// startChild starts name and returns once it printed "ready <addrs>" (our
// own modes) or, if ready is nil, at once. The child is killed if the bench
// dies (Pdeathsig) and our own modes exit when their stdin closes.
func startChild(name, bin string, args []string) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{name: name, cmd: cmd, lines: make(chan string, 16), stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody asked: drop rather than block the child
			}
		}
		close(c.lines)
	}()
	go func() { _ = cmd.Wait(); close(c.exited) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// await reads the child's next stdout line, within d.
func (c *child) await(d time.Duration) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("%s exited: %s", c.name, c.stderr.String())
		}
		return line, nil
	case <-t.C:
		return "", fmt.Errorf("%s: no answer within %v: %s", c.name, d, c.stderr.String())
	}
}

// awaitReady waits for "ready a,b,c" and records the addresses.
func (c *child) awaitReady(d time.Duration) error {
	line, err := c.await(d)
	if err != nil {
		return err
	}
	rest, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		return fmt.Errorf("%s: unexpected %q", c.name, line)
	}
	c.addrs = strings.Split(rest, ",")
	return nil
}

// command sends one control line and waits for "ok".
func (c *child) command(line string) error {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	ans, err := c.await(10 * time.Second)
	if err != nil {
		return err
	}
	if ans != "ok" {
		return fmt.Errorf("%s: %q: %s", c.name, line, ans)
	}
	return nil
}

func (c *child) cpu() time.Duration {
	d, _ := procCPU(c.pid())
	return d
}

func (c *child) rss() int64 {
	n, _ := procRSS(c.pid())
	return n
}

// stop ends the child: stdin closes (our modes exit), SIGTERM (kafka-proxy
// drains), then SIGKILL after a grace period. Only this child's pid is
// signalled.
func (c *child) stop() {
	if c == nil {
		return
	}
	_ = c.stdin.Close()
	if !c.signalled {
		select {
		case <-c.exited:
			return
		case <-time.After(2 * time.Second):
		}
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// tailBuffer keeps the last max bytes written (a child's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// selfExe is the running binary, re-executed for the child modes (under
// `go test` it is the test binary, whose TestMain dispatches them).
func selfExe() (string, error) { return os.Executable() }

// startCluster starts a `bench cluster`; extra are more of its flags
// (--tls-cert, --tls-key).
func startCluster(cfg Config, extra ...string) (*child, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	c, err := startChild("cluster", exe, append([]string{"cluster",
		"--brokers", strconv.Itoa(cfg.Brokers),
		"--partitions", strconv.Itoa(cfg.Partitions),
		"--record-bytes", strconv.Itoa(cfg.RecordBytes)}, extra...))
	if err != nil {
		return nil, err
	}
	if err := c.awaitReady(30 * time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startForwarder starts a `bench forward` to brokers; extra are more of
// its flags (--tls-ca).
func startForwarder(brokers []string, extra ...string) (*child, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	c, err := startChild("forwarder", exe, append([]string{"forward", "--to", strings.Join(brokers, ",")}, extra...))
	if err != nil {
		return nil, err
	}
	if err := c.awaitReady(30 * time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startProxy runs `kafka-proxy server` with every broker mapped to a free
// loopback port, default settings otherwise, and waits until every
// listener accepts connections. A port taken in between is retried.
func startProxy(bin string, brokers []string, extra []string) (*child, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(len(brokers))
		if err != nil {
			return nil, err
		}
		args := []string{"server", "--dynamic-listeners-disable", "--http-disable",
			"--log-level", "warn", "--shutdown-drain-timeout", "2s"}
		addrs := make([]string, len(brokers))
		for i, b := range brokers {
			addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
			args = append(args, "--bootstrap-server-mapping", b+","+addrs[i])
		}
		args = append(args, extra...)
		c, err := startChild("kafka-proxy", bin, args)
		if err != nil {
			return nil, err
		}
		c.addrs, c.signalled = addrs, true
		if lastErr = waitListening(c, addrs, 30*time.Second); lastErr == nil {
			return c, nil
		}
		c.stop()
	}
	return nil, lastErr
}

func waitListening(c *child, addrs []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, a := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				_ = conn.Close()
				break
			}
			select {
			case <-c.exited:
				return fmt.Errorf("%s exited: %s", c.name, c.stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %s not listening after %v: %s", c.name, a, d, c.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// freePorts asks the kernel for n unused loopback ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// buildProxy compiles ./cmd/kafka-proxy of the enclosing module into dir.
func buildProxy(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "kafka-proxy")
	if err := kafkatest.BuildProxy(ctx, bin, false, ""); err != nil {
		return "", fmt.Errorf("%w (run from the repository or pass --proxy-bin)", err)
	}
	return bin, nil
}

// treeState names the source being measured: the commit and the Go files
// under cmd/ and internal/ that differ from it (read-only git queries).
func treeState(ctx context.Context) string {
	head, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (no git)"
	}
	out := strings.TrimSpace(string(head))
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", "cmd", "internal").Output()
	if err != nil {
		return out
	}
	var changed []string
	for _, line := range strings.Split(string(st), "\n") {
		if len(line) > 3 && strings.HasSuffix(line, ".go") && !strings.HasSuffix(line, "_test.go") {
			changed = append(changed, strings.TrimSpace(line[3:]))
		}
	}
	if len(changed) > 0 {
		out += fmt.Sprintf(" + %d uncommitted file(s): %s", len(changed), strings.Join(changed, " "))
	}
	return out
}
