package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

// reauthWaitSlack is added to the read timeout to bound a renewal queued
// behind long requests: Kafka's default max.poll.interval.ms plus a minute.
const reauthWaitSlack = 6 * time.Minute

// errSessionEnding is returned to the proxy's own requests when the
// session closes under them.
var errSessionEnding = fmt.Errorf("session closed: %w", upstream.ErrRoundTripAborted)

// scheduleReauth renews the broker's SASL session (KIP-368) at a jittered
// 85–95% of each lifetime, so the broker never closes the connection under
// the client, however short its sessions are. The returned func stops
// renewing and waits for a renewal in progress (which the end of the
// session's requests cancels) to finish, so no goroutine outlives Run.
func (s *Session) scheduleReauth(lifetime time.Duration) (stop func()) {
	if s.opts.Reauthenticate == nil || lifetime <= 0 {
		return func() {}
	}
	var (
		mu      sync.Mutex // guards timer and stopped: renewals re-arm from their own goroutine
		timer   *time.Timer
		stopped bool
		running sync.WaitGroup // an armed or running renewal
	)
	var arm func(lifetime time.Duration, since time.Time)
	renew := func() {
		defer running.Done()
		start := time.Now()
		next, err := s.reauthenticate()
		if err != nil {
			// A renewal cut short because the session is ending (the
			// client left, a drain, Close) is not why it ends.
			if !errors.Is(err, errSessionEnding) && !s.queue.isClosed() {
				s.end(fmt.Errorf("re-authentication failed: %w", err))
			}
			return
		}
		s.log.Debug("re-authenticated upstream", "took", time.Since(start), "session_lifetime", next)
		arm(next, start)
	}
	arm = func(lifetime time.Duration, since time.Time) {
		at := renewalDelay(lifetime, s.opts.MinSessionLifetime, rand.Float64()) - time.Since(since)
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			running.Add(1)
			timer = time.AfterFunc(at, renew)
		}
	}
	since := s.up.AuthenticatedAt // the session's clock started at the broker's answer
	if since.IsZero() {
		since = time.Now()
	}
	arm(lifetime, since)
	return func() {
		mu.Lock()
		stopped = true
		if timer != nil && timer.Stop() {
			running.Done() // it will never run
		}
		mu.Unlock()
		running.Wait()
	}
}

// renewalDelay is when to renew a session of this lifetime: at 85–95% of
// it (jitter in [0,1) picks where), so that connections opened together
// do not renew together, but never sooner than floor after the last
// renewal unless the session would expire first: then no later than 90%,
// leaving room for requests the broker reads before the renewal. The
// floor bounds how often a connection renews; it never lets a session
// lapse.
func renewalDelay(lifetime, floor time.Duration, jitter float64) time.Duration {
	at := time.Duration(float64(lifetime) * (0.85 + 0.10*jitter))
	latest := lifetime * 90 / 100
	return max(at, min(floor, latest))
}

// reauthenticate holds client requests while the SASL exchange runs.
func (s *Session) reauthenticate() (time.Duration, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.stopping.Err() != nil {
		return 0, errSessionEnding
	}
	// The renewal waits behind requests already in flight (a broker
	// answers one at a time), and a JoinGroup may legitimately wait up to
	// a rebalance timeout (max.poll.interval.ms, 5 minutes by default).
	// Kafka accepts re-authentication after expiry, so waiting is safe;
	// the bound only catches a broker that stopped answering.
	ctx, cancel := context.WithTimeout(s.stopping, max(s.opts.ReadTimeout, 10*time.Second)+reauthWaitSlack)
	defer cancel()
	return s.opts.Reauthenticate(ctx, s)
}

// end records why the proxy ends the session and drains it: in-flight
// responses are delivered, then the connection closes.
func (s *Session) end(reason error) {
	s.endMu.Lock()
	if s.endReason == nil {
		s.endReason = reason
	}
	s.endMu.Unlock()
	s.Drain()
}

func (s *Session) ended() error {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	return s.endReason
}

// RoundTrip sends one of the proxy's own requests on the broker connection,
// in order with the client's, and waits for its response. The caller holds
// writeMu (see reauthenticate).
func (s *Session) RoundTrip(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	s.corr++
	corr := s.corr
	frame := new(kmsg.RequestFormatter).AppendRequest(make([]byte, 0, 64), req, corr) // null client id

	ch := make(chan reply, 1)
	if !s.enqueue(inflight{corr: corr, key: req.Key(), version: req.GetVersion(), reply: ch}) {
		return nil, errSessionEnding
	}
	s.extendWrite()
	if _, err := s.up.Write(frame); err != nil {
		return nil, fmt.Errorf("write %s: %w", keyName(req.Key()), err)
	}
	select {
	case r := <-ch:
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if err := resp.ReadFrom(r.body); err != nil {
			return nil, fmt.Errorf("decode %s response: %w", keyName(req.Key()), err)
		}
		return resp, nil
	case <-s.done:
		return nil, errSessionEnding
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
