package idtoken

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// credentialsFile is a provider's JSON credentials file, read at start and,
// with --credentials-watch (as the proxy we replace watches it), again when
// it changed. A changed file that cannot be used keeps the credentials read
// before, and the log says why.
type credentialsFile[T any] struct {
	component, path string
	watch           bool
	check           func(*T) error // completes and validates what was read
	log             *slog.Logger

	mu    sync.Mutex
	stamp os.FileInfo
	creds *T
}

func (f *credentialsFile[T]) get() (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.creds != nil && !f.watch {
		return *f.creds, nil
	}
	st, err := os.Stat(f.path)
	if err == nil && f.creds != nil && tlsconf.Unchanged(f.stamp, st) {
		return *f.creds, nil
	}
	c, err := f.read()
	switch {
	case err != nil && f.creds != nil:
		f.log.Error("credentials file not reloaded: the previous credentials stay", "component", f.component, "file", f.path, "err", err)
		return *f.creds, nil
	case err != nil:
		var zero T
		return zero, err
	case f.creds != nil:
		f.log.Info("credentials file reloaded", "component", f.component, "file", f.path)
	}
	f.creds, f.stamp = &c, st
	return c, nil
}

func (f *credentialsFile[T]) read() (T, error) {
	var c T
	data, err := os.ReadFile(f.path)
	if err != nil {
		return c, fmt.Errorf("credentials file: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("credentials file %s: %w", f.path, err)
	}
	if err := f.check(&c); err != nil {
		return c, fmt.Errorf("credentials file %s: %w", f.path, err)
	}
	return c, nil
}
