package users

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/tlsconf"
)

// DefaultCheckInterval is how often a Store looks at its file for changes.
const DefaultCheckInterval = time.Second

// Store serves a users file to the SASL mechanisms (auth.PasswordVerifier
// for PLAIN, auth.ScramCredentialStore for SCRAM). It looks at the file at
// most once per check interval, at an authentication, and reloads it when
// its size or modification time changed, so `kafka-proxy users add` takes
// effect at the next authentication without a restart. A file that no
// longer parses keeps the users in force and logs why, once per change.
type Store struct {
	path  string
	every time.Duration
	log   *slog.Logger
	now   func() time.Time
	// dummy is compared against for unknown users, so they cost the same
	// bcrypt time as a wrong password.
	dummy []byte

	mu        sync.Mutex
	users     map[string]User
	stamp     os.FileInfo
	lastCheck time.Time
	bad       os.FileInfo // the broken version last logged (nil: none, or unreadable)
	lastErr   string      // what was last logged, so a problem is logged once
}

// Open loads path; a file missing or broken at start is an error.
func Open(path string, every time.Duration, log *slog.Logger) (*Store, error) {
	if every <= 0 {
		every = DefaultCheckInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	u, err := ReadFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("kafka-proxy unknown user"), DefaultBcryptCost)
	if err != nil {
		return nil, err
	}
	return &Store{path: path, every: every, log: log, now: time.Now, dummy: dummy, users: u, stamp: st, lastCheck: time.Now()}, nil
}

// Len is the number of users in force.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.users)
}

// lookup returns the current entry for name, reloading the file first if
// it is due.
func (s *Store) lookup(name string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.Sub(s.lastCheck) >= s.every {
		s.lastCheck = now
		s.reloadLocked()
	}
	u, ok := s.users[name]
	return u, ok
}

func (s *Store) reloadLocked() {
	st, err := os.Stat(s.path)
	if err == nil && (tlsconf.Unchanged(s.stamp, st) || tlsconf.Unchanged(s.bad, st)) {
		return // unchanged, or the broken version already logged
	}
	var u map[string]User
	if err == nil {
		u, err = ReadFile(s.path, false)
	}
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.log.Error("users file not reloaded: the users loaded before stay in force", "file", s.path, "err", err)
			s.lastErr = msg
		}
		s.bad = st
		return
	}
	s.users, s.stamp, s.bad, s.lastErr = u, st, nil, ""
	s.log.Info("users file reloaded", "file", s.path, "users", len(u))
}

// VerifyPassword checks a PLAIN password against the user's bcrypt hash.
// An unknown user, or one without a PLAIN credential, costs one bcrypt
// comparison as a wrong password does.
func (s *Store) VerifyPassword(_ context.Context, user, password string) error {
	u, ok := s.lookup(user)
	if !ok || len(u.Plain) == 0 {
		_ = bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		if !ok {
			return auth.ErrUnknownUser
		}
		return fmt.Errorf("%w: no PLAIN credential", auth.ErrInvalidCredentials)
	}
	if err := bcrypt.CompareHashAndPassword(u.Plain, []byte(password)); err != nil {
		return auth.ErrInvalidCredentials
	}
	return nil
}

// LookupScram returns the user's stored credentials for a SCRAM mechanism
// (SCRAM-SHA-256 or SCRAM-SHA-512).
func (s *Store) LookupScram(_ context.Context, mechanism, user string) (auth.ScramCredentials, error) {
	u, ok := s.lookup(user)
	if !ok {
		return auth.ScramCredentials{}, auth.ErrUnknownUser
	}
	c, ok := u.Scram[strings.ToLower(mechanism)]
	if !ok {
		return auth.ScramCredentials{}, fmt.Errorf("%w: no %s credential", auth.ErrUnknownUser, mechanism)
	}
	return c, nil
}
