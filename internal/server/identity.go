package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/identity"
	"github.com/kafka-proxy/kafka-proxy/internal/metrics"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

// upstreams holds a dialer per upstream identity: the default settings,
// and one per principal of --upstream-identity-file. Each dialer keeps
// its own credentials and re-authenticates its own connections. SIGHUP
// reloads the file (reload); connections keep the identity they were
// dialled with.
type upstreams struct {
	base     *upstream.Dialer
	k        config.Kafka
	log      *slog.Logger
	metrics  *metrics.Metrics
	required bool

	mu          sync.RWMutex
	byPrincipal map[string]mapped
}

// mapped is one principal's dialer and the identity it was built from,
// so that a reload keeps the dialers of identities that did not change.
type mapped struct {
	id     identity.Identity
	dialer *upstream.Dialer
}

// newUpstreams checks every identity's material now (certificates, key
// passwords, password files), so a mistake in the file stops the proxy
// at start-up naming the entry.
func newUpstreams(k config.Kafka, log *slog.Logger, m *metrics.Metrics) (*upstreams, error) {
	base, err := upstream.New(k, log, m)
	if err != nil {
		return nil, err
	}
	u := &upstreams{base: base, k: k, log: log, metrics: m, required: k.IdentityRequired, byPrincipal: map[string]mapped{}}
	if k.IdentityFile == "" {
		return u, nil
	}
	if u.byPrincipal, err = u.load(nil); err != nil {
		u.close()
		return nil, err
	}
	log.Info("per-client upstream identities", "file", k.IdentityFile, "principals", len(u.byPrincipal), "required", k.IdentityRequired)
	return u, nil
}

// load reads the identity file and builds a dialer per principal, reusing
// prev's for identities that are the same as before.
func (u *upstreams) load(prev map[string]mapped) (map[string]mapped, error) {
	ids, err := identity.Load(u.k.IdentityFile)
	if err != nil {
		return nil, err
	}
	next := make(map[string]mapped, len(ids))
	for _, id := range ids {
		if old, ok := prev[id.Principal]; ok && old.id.Same(id) {
			next[id.Principal] = old
			continue
		}
		own, err := id.Apply(u.k)
		if err == nil {
			var d *upstream.Dialer
			if d, err = upstream.New(own, u.log.With("upstream_identity", id.Principal), u.metrics); err == nil {
				next[id.Principal] = mapped{id: id, dialer: d}
				u.log.Debug("upstream identity", "identity", id.String())
				continue
			}
			err = fmt.Errorf("%s (%s): %w", id.Where, id.Principal, err)
		}
		closeNew(next, prev)
		return nil, err
	}
	return next, nil
}

// closeNew closes the dialers of next that prev does not hold.
func closeNew(next, prev map[string]mapped) {
	for p, m := range next {
		if old, ok := prev[p]; !ok || old.dialer != m.dialer {
			_ = m.dialer.Close()
		}
	}
}

// reload rereads the identity file (on SIGHUP). New connections use the
// new identities; open ones keep theirs. A file with a problem keeps the
// identities in force, and the problem is logged.
func (u *upstreams) reload() {
	if u.k.IdentityFile == "" {
		return
	}
	u.mu.RLock()
	prev := u.byPrincipal
	u.mu.RUnlock()
	next, err := u.load(prev)
	if err != nil {
		u.log.Error("upstream identity file not reloaded: the identities in force stay", "file", u.k.IdentityFile, "err", err)
		return
	}
	u.mu.Lock()
	u.byPrincipal = next
	u.mu.Unlock()
	// The replaced dialers are not closed: open connections re-authenticate
	// with them, and for PLAIN, SCRAM and certificates Close releases nothing.
	u.log.Info("upstream identities reloaded", "file", u.k.IdentityFile, "principals", len(next))
}

// lookup is principal's own dialer, if the file maps it.
func (u *upstreams) lookup(principal string) (*upstream.Dialer, bool) {
	u.mu.RLock()
	m, ok := u.byPrincipal[principal]
	u.mu.RUnlock()
	return m.dialer, ok
}

// dialer is the dialer for principal's connections: its own identity's,
// else the default one.
func (u *upstreams) dialer(principal string) *upstream.Dialer {
	if d, ok := u.lookup(principal); ok {
		return d
	}
	return u.base
}

// admit refuses a principal without an identity of its own when one is
// required.
func (u *upstreams) admit(principal string) error {
	if _, ok := u.lookup(principal); ok || !u.required {
		return nil
	}
	return fmt.Errorf("no upstream identity for %s (--upstream-identity-required)", principal)
}

// step is the admission step refusing, before the dial, a principal
// without a required upstream identity.
func (u *upstreams) step() pipeline.Step {
	return pipeline.Step{Name: "upstream-identity", Run: func(_ context.Context, c *pipeline.Client) error {
		return u.admit(c.Principal)
	}}
}

// redial returns a connection made as principal's identity: up itself
// when it was dialled by that identity's dialer (by), else a new one in
// its place. Local SASL learns the principal only after the first dial.
func (u *upstreams) redial(ctx context.Context, principal, broker string, by *upstream.Dialer, up *upstream.Conn) (*upstream.Conn, error) {
	d := u.dialer(principal)
	if d == by {
		return up, nil
	}
	_ = up.Close()
	return d.Dial(ctx, broker)
}

func (u *upstreams) close() {
	_ = u.base.Close()
	for _, m := range u.byPrincipal {
		_ = m.dialer.Close()
	}
}
