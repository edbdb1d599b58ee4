package upstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxSessionLifetime clamps absurd broker lifetimes (as franz-go does), so
// a duration overflow cannot turn into an immediate re-authentication loop.
const maxSessionLifetime = 365 * 24 * time.Hour

// exchange runs SaslHandshake v1 then SaslAuthenticate (version
// authVersion) over rt until the mechanism is done, returning the session
// lifetime the broker announced (zero: no expiry). The mechanism gets
// fresh credentials on every call, which is what KIP-368 re-authentication
// needs.
func (d *Dialer) exchange(ctx context.Context, broker string, rt RoundTripper, authVersion int16) (time.Duration, error) {
	name := d.mech.Name()
	fail := func(brokerMsg string, err error) error {
		return &AuthError{Broker: broker, Mechanism: name,
			BrokerMessage: scrub(brokerMsg, d.secrets.all()), Err: scrubErr(err, d.secrets.all())}
	}

	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = name
	raw, err := rt.RoundTrip(ctx, hs)
	if err != nil {
		return 0, fail("", fmt.Errorf("SaslHandshake: %w", err))
	}
	hsResp := raw.(*kmsg.SASLHandshakeResponse)
	if hsResp.ErrorCode != 0 {
		err := kerr.ErrorForCode(hsResp.ErrorCode)
		if errors.Is(err, kerr.UnsupportedSaslMechanism) {
			return 0, fail("", fmt.Errorf("the broker does not enable %s (it offers %s)", name, strings.Join(hsResp.SupportedMechanisms, ", ")))
		}
		return 0, fail("", fmt.Errorf("SaslHandshake: %w", err))
	}

	session, clientWrite, err := d.mech.Authenticate(ctx, broker)
	if err != nil {
		return 0, fail("", fmt.Errorf("obtain credentials: %w", err))
	}
	var lifetimeMs int64
	for done := false; !done || len(clientWrite) > 0; {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = authVersion
		req.SASLAuthBytes = clientWrite
		raw, err := rt.RoundTrip(ctx, req)
		if err != nil {
			if errors.Is(err, errClosedByBroker) {
				return 0, fail("", fmt.Errorf("SaslAuthenticate: %w (brokers close the connection on bad credentials)", err))
			}
			return 0, fail("", fmt.Errorf("SaslAuthenticate: %w", err))
		}
		resp := raw.(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != 0 {
			msg := ""
			if resp.ErrorMessage != nil {
				msg = *resp.ErrorMessage
			}
			if ds, ok := session.(interface{ detail() string }); ok && ds.detail() != "" && !strings.Contains(msg, ds.detail()) {
				msg = strings.TrimSpace(msg + " " + ds.detail())
			}
			return 0, fail(msg, kerr.ErrorForCode(resp.ErrorCode))
		}
		lifetimeMs = resp.SessionLifetimeMillis
		clientWrite = nil
		if !done {
			if done, clientWrite, err = session.Challenge(resp.SASLAuthBytes); err != nil {
				return 0, fail("", err)
			}
		}
	}
	lifetime := time.Duration(lifetimeMs) * time.Millisecond
	if lifetimeMs < 0 {
		lifetime = 0
	}
	if lifetimeMs > int64(maxSessionLifetime/time.Millisecond) {
		lifetime = maxSessionLifetime
	}
	return lifetime, nil
}

// authVersion picks the SaslAuthenticate version: v1+ carries
// session_lifetime_ms; v2 (flexible) is the newest Kafka has.
func authVersion(v *kmsg.ApiVersionsResponse) int16 {
	m := maxVersion(v, kmsg.SASLAuthenticate.Int16())
	switch {
	case m < 0:
		return 1
	case m > 2:
		return 2
	}
	return m
}
