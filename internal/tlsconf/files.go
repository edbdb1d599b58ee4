package tlsconf

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// recheck counts RecheckAll calls.
var recheck atomic.Uint64

// RecheckAll makes every TLS configuration of the process check its files
// at its next use, whatever its refresh interval, and reload those that
// changed (SIGHUP).
func RecheckAll() { recheck.Add(1) }

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

// watch decides when to reload: at most every interval (or after a
// RecheckAll), and only when a file the current material came from
// changed.
type watch struct {
	every  time.Duration // 0: only after RecheckAll
	last   time.Time
	gen    uint64 // the RecheckAll count at the last check
	stamps fileStamps
}

func newWatch(every time.Duration, now time.Time) watch {
	return watch{every: every, last: now, gen: recheck.Load()}
}

// due reports whether a reload should be tried now.
func (w *watch) due(now time.Time) bool {
	gen := recheck.Load()
	if gen == w.gen && (w.every <= 0 || now.Sub(w.last) < w.every) {
		return false
	}
	w.gen, w.last = gen, now
	for path, old := range w.stamps {
		st, err := os.Stat(path)
		if err != nil || !Unchanged(old, st) {
			return true
		}
	}
	return false
}
