// Package logbuf is the tests' log sink: a buffer many goroutines write
// to, searched line by line.
package logbuf

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// Buffer collects log output safely from many goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Contains reports whether the log has a line containing every part.
func (b *Buffer) Contains(parts ...string) bool {
	for _, line := range strings.Split(b.String(), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// WaitFor polls the log until a line contains every part or d passes.
func (b *Buffer) WaitFor(d time.Duration, parts ...string) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b.Contains(parts...) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b.Contains(parts...)
}
