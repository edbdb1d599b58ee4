package acl

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// Config is where the rules come from and Kafka's two authorizer knobs.
type Config struct {
	Paths                     []string // files or directories
	SuperUsers                []string
	AllowEveryoneIfNoACLFound bool
}

// Store holds the rules in force and reloads them when their files
// change (Watch) or on request (Reload, for SIGHUP). A new rule set takes
// effect whole or not at all: a file that fails to load keeps the old
// rules and every problem is logged.
type Store struct {
	cfg     Config
	log     *slog.Logger
	current atomic.Pointer[Authorizer]

	mu     sync.Mutex
	stamps map[string]os.FileInfo // what the rules in force were read from
}

// Open loads the rules; an error lists every problem in them.
func Open(cfg Config, log *slog.Logger) (*Store, error) {
	s := &Store{cfg: cfg, log: log}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Authorizer is the rule set in force.
func (s *Store) Authorizer() *Authorizer { return s.current.Load() }

// Reload reads the rules again; on failure the old ones stay.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

func (s *Store) reload() error {
	if err := s.load(); err != nil {
		s.log.Error("acl files not reloaded: the rules in force stay", "err", err)
		return err
	}
	s.log.Info("acl rules reloaded", "rules", s.current.Load().Rules(), "files", len(s.stamps))
	return nil
}

func (s *Store) load() error {
	stamps := s.stat()
	rules, err := LoadPaths(s.cfg.Paths)
	if err != nil {
		s.stamps = stamps // do not report the same broken files again until they change
		return err
	}
	s.current.Store(New(rules, s.cfg.SuperUsers, s.cfg.AllowEveryoneIfNoACLFound))
	s.stamps = stamps
	return nil
}

// stat is every rule file's stamp, directories' entries included, so an
// added or removed file counts as a change.
func (s *Store) stat() map[string]os.FileInfo {
	out := make(map[string]os.FileInfo)
	for _, p := range s.cfg.Paths {
		files, err := expand(p)
		if err != nil {
			out[p] = nil
			continue
		}
		for _, f := range files {
			st, _ := os.Stat(f)
			out[f] = st
		}
	}
	return out
}

// changed reports whether any rule file differs from what was read.
func (s *Store) changed() bool { return !sameStamps(s.stamps, s.stat()) }

// settle is how long the rule files must stay unchanged before a watch
// reloads them.
func settle(interval time.Duration) time.Duration {
	return min(max(interval/2, 5*time.Millisecond), 250*time.Millisecond)
}

// sameStamps reports whether two stats of the rule files agree.
func sameStamps(a, b map[string]os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for f, x := range a {
		y, ok := b[f]
		if !ok || (x == nil) != (y == nil) || (x != nil && !tlsconf.Unchanged(x, y)) {
			return false
		}
	}
	return true
}

// Watch reloads the rules whenever their files change, checking every
// interval, until ctx ends.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			changed := s.changed()
			s.mu.Unlock()
			if !changed {
				continue
			}
			// A file written in place is empty or half written for a
			// moment: reload only once the files have stood still for a
			// short while, so a passing state never becomes the rules.
			before := s.stat()
			select {
			case <-ctx.Done():
				return
			case <-time.After(settle(interval)):
			}
			s.mu.Lock()
			if sameStamps(before, s.stat()) && s.changed() {
				_ = s.reload()
			}
			s.mu.Unlock()
		}
	}
}
