package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/acl"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// openACLs loads the rule files of the acls stage.
func openACLs(cfg config.ACL, log *slog.Logger) (*acl.Store, error) {
	super, err := acl.ParsePrincipals(cfg.SuperUsers)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	st, err := acl.Open(acl.Config{Paths: cfg.Files, SuperUsers: super, AllowEveryoneIfNoACLFound: cfg.AllowEveryoneIfNoACLFound}, log)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	log.Info("acl rules loaded", "rules", st.Authorizer().Rules(), "super_users", len(super))
	return st, nil
}

// hangups is a channel that receives SIGHUP from now on.
func hangups() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// watchHangups reloads the ACL rules (st, if set) when their files change
// (every refresh, if set), and on a hangup reloads them at once and runs
// each of onHangup (the audit trail reopened for log rotation, the
// upstream identities reloaded), until ctx ends.
func watchHangups(ctx context.Context, st *acl.Store, refresh time.Duration, hup chan os.Signal, log *slog.Logger, onHangup ...func()) {
	defer signal.Stop(hup)
	if st != nil && refresh > 0 {
		done := make(chan struct{})
		go func() { defer close(done); st.Watch(ctx, refresh) }()
		defer func() { <-done }()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading")
			if st != nil {
				_ = st.Reload() // a failure is logged; the rules in force stay
			}
			for _, fn := range onHangup {
				fn()
			}
		}
	}
}

// reopenTrail reopens the audit trail's file by name (after rotation).
func (s *Server) reopenTrail() {
	if err := s.trail.Reopen(); err != nil {
		s.log.Error("audit log not reopened: writing on to the old file", "err", err)
	}
}
