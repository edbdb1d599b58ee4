package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// JSON lines carry @timestamp, @level and @message (or the names the
// --log-*-fieldname flags give), lower-case logrus level names, and
// durations as text; attributes keep their names.
func TestJSONLogFields(t *testing.T) {
	for _, c := range []struct {
		log                 config.Log
		timeK, levelK, msgK string
	}{
		{config.Default().Log, "@timestamp", "@level", "@message"},
		{config.Log{TimeFieldName: "ts", LevelFieldName: "severity", MsgFieldName: "text"}, "ts", "severity", "text"},
	} {
		c.log.Format, c.log.Level = "json", "debug"
		var b bytes.Buffer
		log := newLogger(&b, c.log)
		log.Debug("d")
		log.Info("i", "took", 1500*time.Millisecond, "broker", "b:9092")
		log.Warn("w")
		log.Error("e")
		log.WithGroup("g").Info("grouped", "msg", "kept")
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if len(lines) != 5 {
			t.Fatalf("%d lines:\n%s", len(lines), b.String())
		}
		var got []map[string]any
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not JSON: %s", l)
			}
			got = append(got, m)
		}
		for i, want := range []string{"debug", "info", "warning", "error", "info"} {
			if got[i][c.levelK] != want {
				t.Errorf("line %d: %s = %v, want %s: %s", i, c.levelK, got[i][c.levelK], want, lines[i])
			}
			if _, err := time.Parse(time.RFC3339Nano, got[i][c.timeK].(string)); err != nil {
				t.Errorf("line %d: %s: %v", i, c.timeK, err)
			}
			for _, k := range []string{"time", "level", "msg"} {
				if _, ok := got[i][k]; ok && c.msgK != k {
					t.Errorf("line %d still has %q: %s", i, k, lines[i])
				}
			}
		}
		if got[1][c.msgK] != "i" || got[1]["took"] != "1.5s" || got[1]["broker"] != "b:9092" {
			t.Errorf("info line: %s", lines[1])
		}
		if g, ok := got[4]["g"].(map[string]any); !ok || g["msg"] != "kept" || got[4][c.msgK] != "grouped" {
			t.Errorf("grouped line: %s", lines[4])
		}
	}
}

// A start-up error in JSON mode is one JSON line on stderr and nothing
// else; in text mode it is returned for main to print.
func TestStartupErrorInJSON(t *testing.T) {
	fail := func(context.Context, config.Config, *slog.Logger, *reloader) error {
		return errors.New("listen tcp 127.0.0.1:1: bind: permission denied")
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"run", []string{"server", "--log-format", "json", "--bootstrap-server-mapping", baseMapping}},
		{"invalid", []string{"server", "--log-format", "json", "--bootstrap-server-mapping", "nonsense"}},
		{"flag", []string{"server", "--log-format", "json", "--no-such-flag"}},
	} {
		var out, errOut bytes.Buffer
		root := newRoot(&out, &errOut, fail)
		root.SetArgs(c.args)
		err := root.Execute()
		if !Reported(err) {
			t.Errorf("%s: error %v not reported in the log", c.name, err)
		}
		var m map[string]any
		if json.Unmarshal(errOut.Bytes(), &m) != nil || m["@level"] != "error" || m["error"] == "" || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("%s: stderr is not one JSON error line:\n%s", c.name, errOut.String())
		}
	}
	root := newRoot(new(bytes.Buffer), new(bytes.Buffer), fail)
	root.SetArgs([]string{"server", "--bootstrap-server-mapping", baseMapping})
	if err := root.Execute(); err == nil || Reported(err) {
		t.Errorf("text mode: %v", err)
	}
}
