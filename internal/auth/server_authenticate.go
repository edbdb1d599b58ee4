package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's wording for an oversized SASL receive.
const tooLargeMessage = "Failing SASL authentication due to invalid receive size"

// HandleAuthenticate answers SaslAuthenticate v0–v2 for the exchange the
// last handshake started. The response is always non-nil and at the
// request's version.
//
//   - A step in progress (SCRAM's first round trip, OAUTHBEARER's error
//     challenge): the server message and Continue.
//   - Success: the last server message, SessionLifetimeMillis (v1+) set to
//     the configured lifetime capped by the credential's expiry, and
//     Authenticated or Reauthenticated. A re-authentication must keep the
//     principal.
//   - Failure: SASL_AUTHENTICATION_FAILED with the client-facing message,
//     and Close.
//   - No exchange in progress: ILLEGAL_SASL_STATE; Continue after a
//     successful authentication (the broker's request handler answers and
//     the connection stays), Close otherwise.
//
// The error, when not nil, is the reason for the log (an *AuthError for
// authentication failures).
func (s *Server) HandleAuthenticate(ctx context.Context, req *kmsg.SASLAuthenticateRequest) (*kmsg.SASLAuthenticateResponse, Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.SetVersion(req.Version)
	fail := func(ae *AuthError, out Outcome) (*kmsg.SASLAuthenticateResponse, Outcome, error) {
		resp.ErrorCode = ae.Code
		msg := ae.Message
		resp.ErrorMessage = &msg
		if out == Close {
			s.state = stateFailed
			s.ex = nil
		}
		return resp, out, ae
	}

	if req.Version < 0 || req.Version > resp.MaxVersion() {
		return fail(&AuthError{Code: kerr.UnsupportedVersion.Code, Message: fmt.Sprintf("SaslAuthenticate v%d is not supported", req.Version)}, Close)
	}
	switch s.state {
	case stateAuthenticated:
		ae := &AuthError{Code: kerr.IllegalSaslState.Code, Message: "SaslAuthenticate request received after successful authentication", Err: ErrIllegalState}
		if s.expiredLocked(now) {
			ae.Err = errors.Join(ErrIllegalState, ErrSessionExpired)
			return fail(ae, Close)
		}
		return fail(ae, Continue)
	case stateInitial, stateRaw, stateFailed:
		return fail(&AuthError{
			Code:    kerr.IllegalSaslState.Code,
			Message: "Unexpected Kafka request of type SASL_AUTHENTICATE during SASL handshake.",
			Err:     fmt.Errorf("%w: SaslAuthenticate without a SaslHandshake v1", ErrIllegalState),
		}, Close)
	case stateReauthBadMech:
		return fail(&AuthError{Code: kerr.SaslAuthenticationFailed.Code, Message: s.badMechMsg, Err: ErrUnsupportedMechanism}, Close)
	}

	if req.Version > 0 {
		s.clientReauth = true // any v1+ request shows the client knows lifetimes
	} else if s.reauth {
		return fail(invalidCredentials(s.mech, true, fmt.Errorf("%w: re-authentication with SaslAuthenticate v0", ErrIllegalState)), Close)
	}
	reply, done, err := s.step(ctx, req.SASLAuthBytes)
	if err != nil {
		return fail(err, Close)
	}
	resp.SASLAuthBytes = reply
	if !done {
		return resp, Continue, nil
	}
	lifetime, out := s.complete(now)
	resp.SessionLifetimeMillis = lifetime.Milliseconds()
	return resp, out, nil
}

// StepRaw handles one raw SASL token of the v0 flow (after SaslHandshake
// v0): the client sends a 4-byte big-endian length and the token, and the
// caller writes back the reply the same way, even when it is empty (PLAIN's
// success is a zero-length token). Framing is left to the caller. An error
// means authentication failed: close the connection without a reply, as
// Kafka does. After the exchange completes (Authenticated reports true and
// ExpectRaw false) frames are Kafka requests again.
func (s *Server) StepRaw(ctx context.Context, token []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.state != stateRaw {
		return nil, &AuthError{Code: kerr.IllegalSaslState.Code, Message: "Unexpected SASL token", Err: fmt.Errorf("%w: raw token without a SaslHandshake v0", ErrIllegalState)}
	}
	reply, done, err := s.step(ctx, token)
	if err != nil {
		s.state, s.ex = stateFailed, nil
		return nil, err
	}
	if done {
		s.complete(now)
	}
	if reply == nil {
		reply = []byte{}
	}
	return reply, nil
}

// step runs one exchange step under the size cap and the principal rule.
func (s *Server) step(ctx context.Context, msg []byte) ([]byte, bool, *AuthError) {
	if len(msg) > s.maxMsg {
		return nil, false, &AuthError{
			Code:    kerr.SaslAuthenticationFailed.Code,
			Message: tooLargeMessage,
			Err:     fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(msg), s.maxMsg),
		}
	}
	reply, done, err := s.ex.Step(ctx, msg)
	if err != nil {
		return nil, false, s.reword(err)
	}
	if done && s.reauth {
		if prev, next := s.identity.Principal, s.ex.Identity().Principal; prev != next {
			return nil, false, &AuthError{
				Code:    kerr.SaslAuthenticationFailed.Code,
				Message: fmt.Sprintf("Cannot change principals during re-authentication from User.%s: User.%s", prev, next),
				Err:     errors.New("principal changed during re-authentication"),
			}
		}
	}
	return reply, done, nil
}

// complete establishes (or renews) the session after a successful
// exchange and returns the lifetime to announce, computed as Kafka's
// ReauthInfo.calcCompletionTimesAndReturnSessionLifetimeMs does: the
// configured lifetime, the credential's remaining validity, or the smaller
// of both, never negative, in whole milliseconds, and the session expires
// that long after now.
func (s *Server) complete(now time.Time) (time.Duration, Outcome) {
	id := s.ex.Identity()
	out := Authenticated
	if s.reauth {
		out = Reauthenticated
	}
	var lifetimeMs int64
	s.expiry = time.Time{}
	if maxMs := s.lifetime.Milliseconds(); !id.Expiry.IsZero() || maxMs > 0 {
		credMs := id.Expiry.UnixMilli() - now.UnixMilli() // Kafka counts in wall-clock milliseconds
		switch {
		case id.Expiry.IsZero():
			lifetimeMs = maxMs
		case maxMs <= 0:
			lifetimeMs = credMs
		default:
			lifetimeMs = min(credMs, maxMs)
		}
		lifetimeMs = max(lifetimeMs, 0)
		s.expiry = now.Add(time.Duration(lifetimeMs) * time.Millisecond)
	}
	s.authed, s.identity, s.sessionMech = true, id, s.mech
	s.state, s.ex, s.reauth = stateAuthenticated, nil, false
	return time.Duration(lifetimeMs) * time.Millisecond, out
}
