package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/identity"
	"github.com/kafka-proxy/kafka-proxy/internal/metrics"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

// upstreams holds a dialer per upstream identity: the default settings,
// and one per principal of --upstream-identity-file. Each dialer keeps
// its own credentials and re-authenticates its own connections.
type upstreams struct {
	base        *upstream.Dialer
	byPrincipal map[string]*upstream.Dialer
	required    bool
}

// newUpstreams checks every identity's material now (certificates, key
// passwords, password files), so a mistake in the file stops the proxy
// at start-up naming the entry.
func newUpstreams(k config.Kafka, log *slog.Logger, m *metrics.Metrics) (*upstreams, error) {
	base, err := upstream.New(k, log, m)
	if err != nil {
		return nil, err
	}
	u := &upstreams{base: base, byPrincipal: map[string]*upstream.Dialer{}, required: k.IdentityRequired}
	if k.IdentityFile == "" {
		return u, nil
	}
	ids, err := identity.Load(k.IdentityFile)
	if err != nil {
		u.close()
		return nil, err
	}
	for _, id := range ids {
		own, err := id.Apply(k)
		if err == nil {
			var d *upstream.Dialer
			if d, err = upstream.New(own, log.With("upstream_identity", id.Principal), m); err == nil {
				u.byPrincipal[id.Principal] = d
				log.Debug("upstream identity", "identity", id.String())
				continue
			}
			err = fmt.Errorf("%s (%s): %w", id.Where, id.Principal, err)
		}
		u.close()
		return nil, err
	}
	log.Info("per-client upstream identities", "file", k.IdentityFile, "principals", len(ids), "required", k.IdentityRequired)
	return u, nil
}

// dialer is the dialer for principal's connections: its own identity's,
// else the default one.
func (u *upstreams) dialer(principal string) *upstream.Dialer {
	if d, ok := u.byPrincipal[principal]; ok {
		return d
	}
	return u.base
}

// admit refuses a principal without an identity of its own when one is
// required.
func (u *upstreams) admit(principal string) error {
	if _, ok := u.byPrincipal[principal]; ok || !u.required {
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
	for _, d := range u.byPrincipal {
		_ = d.Close()
	}
}
