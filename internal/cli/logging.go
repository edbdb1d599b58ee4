package cli

import (
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// newLogger builds the process logger. Levels accept the drop-in names
// (warning, fatal, panic, trace) as well as slog's.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	log, _ := newLevelLogger(w, c)
	return log
}

// newLevelLogger is newLogger with its level held in a LevelVar, so that
// a reloaded configuration can change it.
func newLevelLogger(w io.Writer, c config.Log) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(parseLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		opts.ReplaceAttr = jsonFields(c)
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// parseLevel maps the level names of the proxy we replace (logrus's) onto
// slog's.
func parseLevel(name string) slog.Level {
	switch strings.ToLower(name) {
	case "debug", "trace":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "fatal", "panic":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// jsonFields makes JSON lines read as the proxy we replace writes them, so
// log pipelines keyed on its fields keep working: time, level and message
// under the --log-*-fieldname names (@timestamp, @level, @message by
// default), levels in lower case as logrus names them (warning, not
// WARN), and durations as "1.5s" rather than nanoseconds.
func jsonFields(c config.Log) func(groups []string, a slog.Attr) slog.Attr {
	name := func(set, def string) string {
		if set == "" {
			return def
		}
		return set
	}
	timeKey, levelKey, msgKey := name(c.TimeFieldName, "@timestamp"), name(c.LevelFieldName, "@level"), name(c.MsgFieldName, "@message")
	return func(groups []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.TimeKey:
			a.Key = timeKey // slog already writes RFC 3339 with nanoseconds
		case slog.LevelKey:
			a.Key = levelKey
			a.Value = slog.StringValue(levelName(a.Value.Any()))
		case slog.MessageKey:
			a.Key = msgKey
		}
		return a
	}
}

// levelName is logrus' lower-case name of a slog level.
func levelName(v any) string {
	l, ok := v.(slog.Level)
	if !ok {
		return strings.ToLower(slog.AnyValue(v).String())
	}
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warning"
	}
	return "error"
}

// errReported is an error already written to the log in its configured
// format: the process only has to exit non-zero.
var errReported = errors.New("error reported in the log")

// reportStartup writes a start-up error as a JSON log line when the log
// format is json, so that nothing the process prints breaks a JSON log
// pipeline; in text mode the error is returned for main to print.
func reportStartup(w io.Writer, c config.Log, err error) error {
	if err == nil || c.Format != "json" || errors.Is(err, errReported) {
		return err
	}
	newLogger(w, c).Error("kafka-proxy cannot run", "error", err.Error())
	return errReported
}
