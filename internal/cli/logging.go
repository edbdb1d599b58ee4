package cli

import (
	"io"
	"log/slog"
	"strings"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// newLogger builds the process logger. Levels accept the drop-in names
// (warning, fatal, panic, trace) as well as slog's.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(c.Level) {
	case "debug", "trace":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
