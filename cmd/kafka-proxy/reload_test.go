package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConfigReload: SIGHUP rereads --config. A changed mapping moves the
// broker's listener (the old one closes, the new one serves), a changed
// log level takes effect, and a file with a mistake keeps the running
// configuration, the problem logged with its path.
func TestConfigReload(t *testing.T) {
	cluster := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	broker := cluster.ListenAddrs()[0]
	port := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	first, second := port(), port()
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	writeConfig := func(listen, level, extra string) {
		t.Helper()
		doc := fmt.Sprintf(`proxy:
  bootstrapServers:
    - {upstream: %q, listen: %q}
  dynamicListeners: {disable: true}
http: {listenAddress: "127.0.0.1:0"}
log: {format: json, level: %s}
%s`, broker, listen, level, extra)
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	produce := func(addr string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"), kgo.RetryTimeout(3*time.Second))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	}
	hangup := func(p *proc, msg string) map[string]any {
		t.Helper()
		before := p.count(msg)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); p.count(msg) == before; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after SIGHUP", msg)
			}
		}
		return p.last(msg)
	}

	writeConfig(first, "info", "")
	p := start(t, "server", "--config", path)
	p.waitLog("kafka-proxy started")
	admin := "http://" + p.waitLog("http endpoints")["listen"].(string)
	if err := produce(first); err != nil {
		t.Fatalf("through %s: %v", first, err)
	}
	// A client that stays connected through the listener about to go.
	idle, err := kgo.NewClient(kgo.SeedBrokers(first))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	pingCtx, cancelPing := context.WithTimeout(context.Background(), 5*time.Second)
	if err := idle.Ping(pingCtx); err != nil {
		t.Fatalf("ping through %s: %v", first, err)
	}
	cancelPing()
	if p.count("connection admitted") != 0 {
		t.Fatal("a debug line at level info")
	}

	writeConfig(second, "debug", "kafka: {clientId: other}\n")
	e := hangup(p, "configuration reloaded")
	if e["mappings_added"] != 1.0 || e["mappings_removed"] != 1.0 || e["log_level"] != "debug" {
		t.Errorf("reload: %v", e)
	}
	if w := p.last("changed settings that apply at the next start"); w == nil || fmt.Sprint(w["sections"]) != "[kafka]" {
		t.Errorf("the restart-only change is not named: %v", w)
	}
	if err := produce(second); err != nil {
		t.Fatalf("through the new listener %s: %v", second, err)
	}
	if c, err := net.DialTimeout("tcp", first, time.Second); err == nil {
		c.Close()
		t.Errorf("the removed listener %s still accepts", first)
	}
	if p.count("connection admitted") == 0 {
		t.Error("the debug level did not take effect")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, metrics := httpGet(t, admin+"/metrics")
		if strings.Contains(metrics, `reason="listener-removed"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection of the removed listener was not drained (no listener-removed close)")
		}
	}

	if err := os.WriteFile(path, []byte("proxy:\n  bootstrapServer: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e = hangup(p, "configuration not reloaded: the running one stays")
	if fmt.Sprint(e["err"]) == "" || e["file"] != path {
		t.Errorf("the problem is not logged with its file: %v", e)
	}
	if err := produce(second); err != nil {
		t.Errorf("after a bad reload, the running configuration no longer serves: %v", err)
	}
}
