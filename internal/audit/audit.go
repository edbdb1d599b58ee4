// Package audit writes the audit trail (--audit-log): one JSON line per
// authentication, refused connection and ACL decision, with who, from
// where, what and the outcome. Never a secret: events carry names,
// addresses and reasons only.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event kinds.
const (
	AuthSuccess        = "auth-success"
	AuthFailure        = "auth-failure"
	ACLDenied          = "acl-denied"
	ACLAllowed         = "acl-allowed" // with --audit-log-allowed only
	ConnectionRejected = "connection-rejected"
)

// Event is one line. Empty fields are left out.
type Event struct {
	Time         time.Time `json:"time"`
	Event        string    `json:"event"`
	Listener     string    `json:"listener,omitempty"`
	Client       string    `json:"client,omitempty"`
	Principal    string    `json:"principal,omitempty"`
	Mechanism    string    `json:"mechanism,omitempty"`
	APIKey       string    `json:"api_key,omitempty"`
	APIVersion   *int16    `json:"api_version,omitempty"`
	ResourceType string    `json:"resource_type,omitempty"`
	ResourceName string    `json:"resource_name,omitempty"`
	Operation    string    `json:"operation,omitempty"`
	Decision     string    `json:"decision,omitempty"` // allow, deny
	Reason       string    `json:"reason,omitempty"`
}

// Log is the audit trail's destination: a file (reopened on Reopen, for
// log rotation) or stdout. A nil *Log records nothing.
type Log struct {
	path    string
	allowed bool

	mu  sync.Mutex
	w   io.Writer
	f   *os.File
	now func() time.Time
}

// Open starts the trail at path ("stdout" for standard output). allowed:
// also record allowed ACL decisions.
func Open(path string, allowed bool) (*Log, error) {
	l := &Log{path: path, allowed: allowed, now: time.Now}
	if path == "stdout" || path == "-" {
		l.w = os.Stdout
		return l, nil
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if l.f != nil {
		_ = l.f.Close()
	}
	l.f, l.w = f, f
	return nil
}

// Reopen opens the file again by name (after logrotate moved it); on
// failure the old file stays in use.
func (l *Log) Reopen() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open()
}

// Allowed reports whether allowed decisions are recorded.
func (l *Log) Allowed() bool { return l != nil && l.allowed }

// Record writes one event, stamped now.
func (l *Log) Record(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b) // one write per line, so lines never interleave
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Version is a helper for Event.APIVersion.
func Version(v int16) *int16 { return &v }
