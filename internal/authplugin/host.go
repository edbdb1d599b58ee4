// Package authplugin runs the authentication plugins of the proxy we
// replace, unchanged: separate executables speaking HashiCorp go-plugin's
// protocol (core version 1, plugin protocol version 1) in its net/rpc or
// its gRPC form, one kind per binary: a password authenticator (local
// PLAIN), a token info (local OAUTHBEARER and gateway tokens) or a token
// provider (gateway and broker tokens).
//
// The host is written here from the protocol's documented facts rather
// than taken from the go-plugin module, which would link the testing
// package into the proxy: start the command with the kind's magic cookie
// in its environment, read its handshake line from stdout, connect to the
// address it names, relay its stderr log lines.
//
// A plugin is a process the proxy does not trust to stay well: every call
// has a timeout, a plugin that hangs is killed, one that crashes is started
// again at the next call (at most once a second), and neither fails more
// than the calls it was given.
package authplugin

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// Kind is one plugin interface: its handshake cookie, plugin name and call.
type Kind struct {
	cookieKey string
	name      string
	method    Method
}

// The three kinds, as the proxy we replace names them.
var (
	PasswordAuthenticator = Kind{cookieKey: "AUTH_PLUGIN", name: "passwordAuthenticator", method: authenticate}
	TokenInfo             = Kind{cookieKey: "GATEWAY_SERVER_PLUGIN", name: "tokenInfo", method: verifyToken}
	TokenProvider         = Kind{cookieKey: "GATEWAY_CLIENT_PLUGIN", name: "tokenProvider", method: getToken}
)

// CookieKey is the environment variable that must hold "hello".
func (k Kind) CookieKey() string { return k.cookieKey }

// Name is the plugin name the net/rpc form dispenses.
func (k Kind) Name() string { return k.name }

// Method is the kind's call.
func (k Kind) Method() Method { return k.method }

// Method is one call in both forms.
type Method struct {
	RPC, GRPC         string // Plugin.Authenticate, /proto.PasswordAuthenticator/Authenticate
	Request, Response string // message names
}

var (
	authenticate = Method{"Plugin.Authenticate", methodAuthenticate, "CredentialsRequest", "AuthenticateResponse"}
	verifyToken  = Method{"Plugin.VerifyToken", methodVerifyToken, "VerifyRequest", "VerifyResponse"}
	getToken     = Method{"Plugin.GetToken", methodGetToken, "TokenRequest", "TokenResponse"}
)

// Config starts one plugin.
type Config struct {
	Command string
	Params  []string
	// Timeout bounds each call, and the plugin's start.
	Timeout time.Duration
	// LogLevel is the lowest level of the plugin's own log lines that are
	// logged (trace, debug, info, warn, error, off).
	LogLevel string
}

// ErrPlugin marks a call the plugin did not answer (not started, crashed,
// timed out): the caller could not decide, which is not the client's
// fault.
var ErrPlugin = errors.New("plugin did not answer")

// restartEvery bounds how often a failing plugin is started.
const restartEvery = time.Second

// Host owns one plugin process.
type Host struct {
	kind  Kind
	cfg   Config
	level slog.Level // the plugin's log lines below it are dropped
	quiet bool       // --auth-local-log-level off
	log   *slog.Logger

	mu        sync.Mutex
	proc      *process
	lastStart time.Time
	lastErr   error
	closed    bool
}

// NewHost checks the configuration and starts the plugin, so a broken
// command fails at start rather than at the first client.
func NewHost(kind Kind, cfg Config, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if _, err := exec.LookPath(cfg.Command); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", cfg.Command, err)
	}
	h := &Host{kind: kind, cfg: cfg, log: log.With("plugin", filepath.Base(cfg.Command), "kind", kind.name)}
	switch strings.ToLower(cfg.LogLevel) {
	case "", "trace":
		h.level = slog.LevelDebug - 4
	case "debug":
		h.level = slog.LevelDebug
	case "info":
		h.level = slog.LevelInfo
	case "warn":
		h.level = slog.LevelWarn
	case "error":
		h.level = slog.LevelError
	case "off":
		h.quiet = true
	default:
		return nil, fmt.Errorf("plugin log level %q: want trace, debug, info, warn, error or off", cfg.LogLevel)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.startLocked(); err != nil {
		return nil, err
	}
	return h, nil
}

// Close stops the plugin.
func (h *Host) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.stopLocked()
}

// Protocol is the running plugin's form, "netrpc" or "grpc" ("" if none
// runs).
func (h *Host) Protocol() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return ""
	}
	return h.proc.protocol
}

// call runs the kind's method with args, starting the plugin first if it
// is not running.
func (h *Host) call(ctx context.Context, args map[string]any) (map[string]any, error) {
	m := h.kind.method
	p, err := h.get()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	resp, err := p.caller.call(ctx, m, args)
	if err == nil {
		return resp, nil
	}
	if ctx.Err() != nil {
		h.log.Error("plugin call timed out; killing it, it is started again at the next call", "method", m.RPC, "timeout", h.cfg.Timeout)
		h.discard(p)
		return nil, fmt.Errorf("%w: %s timed out after %v", ErrPlugin, m.RPC, h.cfg.Timeout)
	}
	h.log.Error("plugin call failed; the plugin is started again at the next call", "method", m.RPC, "error", err)
	h.discard(p)
	return nil, fmt.Errorf("%w: %s: %v", ErrPlugin, m.RPC, err)
}

// get returns the running plugin, or starts it (at most once a second).
func (h *Host) get() (*process, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("%w: closed", ErrPlugin)
	}
	if h.proc != nil && !h.proc.exited() {
		return h.proc, nil
	}
	if h.proc != nil {
		h.log.Error("plugin exited; starting it again")
		h.stopLocked()
	}
	if time.Since(h.lastStart) < restartEvery && h.lastErr != nil {
		return nil, h.lastErr
	}
	return h.startLocked()
}

func (h *Host) startLocked() (*process, error) {
	h.lastStart = time.Now()
	p, err := h.launch()
	if err != nil {
		h.lastErr = fmt.Errorf("%w: start %s: %v", ErrPlugin, h.cfg.Command, err)
		h.log.Error("plugin did not start", "error", err)
		return nil, h.lastErr
	}
	h.proc, h.lastErr = p, nil
	h.log.Info("plugin started", "protocol", p.protocol, "pid", p.cmd.Process.Pid)
	return p, nil
}

// discard drops p if it is still the current plugin.
func (h *Host) discard(p *process) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == p {
		h.stopLocked()
	}
}

func (h *Host) stopLocked() {
	if h.proc != nil {
		h.proc.kill()
		h.proc = nil
	}
}

// process is one running plugin.
type process struct {
	cmd      *exec.Cmd
	dir      string // its socket directory, removed when it ends
	done     chan struct{}
	protocol string
	caller   caller
	closer   io.Closer // the connection to it
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) kill() {
	if p.closer != nil {
		_ = p.closer.Close()
	}
	// The whole process group: a child the plugin started would hold its
	// stdout and stderr open and outlive it.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	_ = os.RemoveAll(p.dir)
}

// launch starts the command, reads its handshake line and connects.
func (h *Host) launch() (*process, error) {
	dir, err := os.MkdirTemp("", "kafka-proxy-plugin-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(h.cfg.Command, h.cfg.Params...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(),
		h.kind.cookieKey+"=hello",
		"PLUGIN_PROTOCOL_VERSIONS=1",
		"PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000",
		"PLUGIN_UNIX_SOCKET_DIR="+dir, "TMPDIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &process{cmd: cmd, dir: dir, done: make(chan struct{})}
	var relays sync.WaitGroup
	relays.Add(1)
	go func() { defer relays.Done(); h.relay(stderr) }()
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(io.LimitReader(stdout, 64<<10))
		line, err := r.ReadString('\n')
		if err == nil {
			lines <- strings.TrimSpace(line)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout) // later output would block it
	}()
	go func() { relays.Wait(); _ = cmd.Wait(); close(p.done) }()
	fail := func(err error) (*process, error) {
		p.kill()
		return nil, err
	}
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			return fail(errors.New("it exited or closed stdout before its handshake (is it a plugin of this kind?)"))
		}
		line = l
	case <-time.After(h.cfg.Timeout):
		return fail(fmt.Errorf("no handshake within %v", h.cfg.Timeout))
	}
	network, addr, protocol, err := parseHandshake(line)
	if err != nil {
		return fail(err)
	}
	p.protocol = protocol
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	defer cancel()
	if protocol == "grpc" {
		p.caller, p.closer, err = dialGRPC(ctx, network, addr)
	} else {
		p.caller, p.closer, err = dialNetRPC(ctx, network, addr, h.kind.name)
	}
	if err != nil {
		return fail(fmt.Errorf("connect (%s %s %s): %w", protocol, network, addr, err))
	}
	return p, nil
}

// parseHandshake reads go-plugin's line
// CORE-VERSION|APP-VERSION|NETWORK|ADDRESS[|PROTOCOL[|CERT]].
func parseHandshake(line string) (network, addr, protocol string, err error) {
	parts := strings.Split(line, "|")
	if len(parts) < 4 {
		return "", "", "", fmt.Errorf("handshake %q: want core|app|network|address|protocol (is it a plugin?)", truncate(line))
	}
	if parts[0] != "1" {
		return "", "", "", fmt.Errorf("handshake %q: core protocol %s, want 1", truncate(line), parts[0])
	}
	if parts[1] != "1" {
		return "", "", "", fmt.Errorf("handshake %q: plugin protocol version %s, want 1", truncate(line), parts[1])
	}
	network, addr, protocol = parts[2], parts[3], "netrpc"
	if network != "unix" && network != "tcp" {
		return "", "", "", fmt.Errorf("handshake %q: network %q", truncate(line), network)
	}
	if len(parts) > 4 && parts[4] != "" {
		protocol = parts[4]
	}
	if protocol != "netrpc" && protocol != "grpc" {
		return "", "", "", fmt.Errorf("handshake %q: protocol %q, want netrpc or grpc", truncate(line), protocol)
	}
	if len(parts) > 5 && parts[5] != "" {
		return "", "", "", errors.New("the plugin asks for mutual TLS (AutoMTLS), which the proxy does not offer")
	}
	return network, addr, protocol, nil
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// dialGRPC connects and waits until the connection is ready, so a plugin
// that names an address nobody listens on fails at its start.
func dialGRPC(ctx context.Context, network, addr string) (caller, io.Closer, error) {
	conn, err := grpc.NewClient("passthrough:///plugin",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}))
	if err != nil {
		return nil, nil, err
	}
	conn.Connect()
	for {
		state := conn.GetState()
		if state == connectivity.Ready {
			return grpcCaller{conn}, conn, nil
		}
		if state == connectivity.TransientFailure || !conn.WaitForStateChange(ctx, state) {
			conn.Close()
			return nil, nil, fmt.Errorf("not ready (%s)", state)
		}
	}
}

// dialNetRPC connects as go-plugin's net/rpc client does: yamux over the
// connection, the control stream and two stdio streams opened in that
// order, Dispenser.Dispense(name) naming a stream id, and that stream
// (id written and acknowledged, little endian) carrying the plugin's RPCs.
func dialNetRPC(ctx context.Context, network, addr, name string) (caller, io.Closer, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d) // for the setup only
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	fail := func(err error) (caller, io.Closer, error) {
		mux.Close()
		return nil, nil, err
	}
	control, err := mux.Open()
	if err != nil {
		return fail(err)
	}
	for range 2 { // stdout, stderr: unused, drained
		s, err := mux.Open()
		if err != nil {
			return fail(err)
		}
		go func() { _, _ = io.Copy(io.Discard, s) }()
	}
	var id uint32
	if err := rpc.NewClient(control).Call("Dispenser.Dispense", name, &id); err != nil {
		return fail(fmt.Errorf("dispense %s: %w", name, err))
	}
	stream, err := mux.OpenStream()
	if err != nil {
		return fail(err)
	}
	if err := binary.Write(stream, binary.LittleEndian, id); err != nil {
		return fail(err)
	}
	var ack uint32
	if err := binary.Read(stream, binary.LittleEndian, &ack); err != nil {
		return fail(fmt.Errorf("plugin stream: %w", err))
	}
	if ack != id {
		return fail(fmt.Errorf("plugin stream: ack %d for %d", ack, id))
	}
	_ = conn.SetDeadline(time.Time{})
	return rpcCaller{rpc.NewClient(stream)}, mux, nil
}

// caller is a dispensed plugin in either form.
type caller interface {
	call(ctx context.Context, m Method, args map[string]any) (map[string]any, error)
}

// rpcCaller is the net/rpc form: gob-encoded map[string]interface{}.
type rpcCaller struct{ c *rpc.Client }

func (r rpcCaller) call(ctx context.Context, m Method, args map[string]any) (map[string]any, error) {
	var resp map[string]any
	call := r.c.Go(m.RPC, args, &resp, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		return resp, call.Error
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// grpcCaller is the gRPC form.
type grpcCaller struct{ c *grpc.ClientConn }

func (g grpcCaller) call(ctx context.Context, m Method, args map[string]any) (map[string]any, error) {
	req, resp := MapToMessage(NewMessage(m.Request), args), NewMessage(m.Response)
	if err := g.c.Invoke(ctx, m.GRPC, req, resp); err != nil {
		return nil, err
	}
	return MessageToMap(resp), nil
}

// The response fields, whatever integer type a net/rpc plugin chose.
func boolField(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

func int32Field(m map[string]any, k string) int32 {
	switch v := m[k].(type) {
	case int32:
		return v
	case int:
		return int32(v)
	case int64:
		return int32(v)
	case uint32:
		return int32(v)
	}
	return 0
}

// relay logs the plugin's stderr: go-plugin plugins write hclog JSON
// lines (@level, @message, and fields), anything else is logged as is.
func (h *Host) relay(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		if h.quiet {
			continue
		}
		level, msg, attrs := slog.LevelDebug, sc.Text(), []any{}
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			level = hclogLevel(line["@level"])
			if m, ok := line["@message"].(string); ok {
				msg = m
			}
			for k, v := range line {
				if !strings.HasPrefix(k, "@") {
					attrs = append(attrs, k, v)
				}
			}
		}
		if level >= h.level {
			h.log.Log(context.Background(), level, "plugin: "+msg, attrs...)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func hclogLevel(v any) slog.Level {
	switch v {
	case "trace":
		return slog.LevelDebug - 4
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
