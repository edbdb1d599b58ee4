package tlsconf

import (
	"fmt"
	"os"
	"time"
)

// fileStamps records the files a TLS config was built from, so a reload
// can tell whether any of them changed.
type fileStamps map[string]os.FileInfo

// read reads path (what names it in errors) and records its stamp.
func (f fileStamps) read(path, what string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tls %s: %w", what, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls %s: %w", what, err)
	}
	f[path] = st
	return data, nil
}

// watch decides when to reload: at most every interval, and only when a
// file the current material came from changed.
type watch struct {
	every  time.Duration // 0: never
	last   time.Time
	stamps fileStamps
}

// due reports whether a reload should be tried now.
func (w *watch) due(now time.Time) bool {
	if w.every <= 0 || now.Sub(w.last) < w.every {
		return false
	}
	w.last = now
	for path, old := range w.stamps {
		st, err := os.Stat(path)
		if err != nil || !Unchanged(old, st) {
			return true
		}
	}
	return false
}
