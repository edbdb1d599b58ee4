package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// errSessionEnding is returned to the proxy's own requests when the
// session closes under them.
var errSessionEnding = errors.New("session closed")

// scheduleReauth renews the broker's SASL session (KIP-368) at a jittered
// 85–95% of each lifetime, so the broker never closes the connection under
// the client. The returned func stops the timer.
func (s *Session) scheduleReauth(lifetime time.Duration) (stop func()) {
	if s.opts.Reauthenticate == nil || lifetime <= 0 {
		return func() {}
	}
	var timer *time.Timer
	var arm func(time.Duration)
	arm = func(lifetime time.Duration) {
		if lifetime < s.opts.MinSessionLifetime {
			s.end(fmt.Errorf("broker session lifetime %v is shorter than the %v minimum; closing after in-flight responses so the client reconnects", lifetime, s.opts.MinSessionLifetime))
			return
		}
		at := time.Duration(float64(lifetime) * (0.85 + 0.10*rand.Float64()))
		timer = time.AfterFunc(at, func() {
			start := time.Now()
			next, err := s.reauthenticate()
			if err != nil {
				s.end(fmt.Errorf("re-authentication failed: %w", err))
				return
			}
			s.log.Debug("re-authenticated upstream", "took", time.Since(start), "session_lifetime", next)
			arm(next)
		})
	}
	arm(lifetime)
	return func() {
		s.writeMu.Lock() // timer is only re-armed under a renewal
		if timer != nil {
			timer.Stop()
		}
		s.writeMu.Unlock()
	}
}

// reauthenticate holds client requests while the SASL exchange runs.
func (s *Session) reauthenticate() (time.Duration, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	select {
	case <-s.done:
		return 0, errSessionEnding
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(s.opts.ReadTimeout, 10*time.Second))
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
	frame := make([]byte, 4, 64)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
	if flexible, _ := wire.RequestFlexible(req.Key(), req.GetVersion()); flexible {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	putSize(frame, len(frame)-4)

	ch := make(chan reply, 1)
	if !s.queue.push(inflight{corr: corr, key: req.Key(), version: req.GetVersion(), reply: ch}) {
		return nil, errSessionEnding
	}
	if s.opts.WriteTimeout > 0 {
		_ = s.up.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	}
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
