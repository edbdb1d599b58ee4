package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// HandleHandshake answers SaslHandshake v0–v1 as a Kafka broker does. Every
// response lists the enabled mechanisms.
//
//   - Before authentication: an enabled mechanism starts an exchange (v1:
//     SaslAuthenticate requests follow; v0: raw tokens follow, see
//     StepRaw); an unknown one gets UNSUPPORTED_SASL_MECHANISM and Close.
//   - During an exchange: ILLEGAL_SASL_STATE and Close.
//   - After authentication (KIP-368 re-authentication): allowed only when
//     the session has an expiry, the client authenticated with
//     SaslAuthenticate v1+, this handshake is v1 and the previous
//     re-authentication started at least a second ago. Otherwise
//     ILLEGAL_SASL_STATE and Continue (the broker's request handler answers
//     and the connection stays), or Close if the session has expired. A
//     different, enabled mechanism is accepted here and fails at the next
//     SaslAuthenticate, as in Kafka.
//
// The error, when not nil, is the reason for the log.
func (s *Server) HandleHandshake(req *kmsg.SASLHandshakeRequest) (*kmsg.SASLHandshakeResponse, Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SetVersion(req.Version)
	resp.SupportedMechanisms = slices.Clone(s.names)
	refuse := func(code int16, out Outcome, err error) (*kmsg.SASLHandshakeResponse, Outcome, error) {
		resp.ErrorCode = code
		if out == Close {
			s.state = stateFailed
		}
		return resp, out, err
	}

	if req.Version < 0 || req.Version > resp.MaxVersion() {
		return refuse(kerr.UnsupportedVersion.Code, Close, fmt.Errorf("SaslHandshake v%d is not supported", req.Version))
	}
	switch s.state {
	case stateFailed:
		return refuse(kerr.IllegalSaslState.Code, Close, fmt.Errorf("%w: handshake after a failed authentication", ErrIllegalState))
	case stateAuthenticate, stateRaw, stateReauthBadMech:
		return refuse(kerr.IllegalSaslState.Code, Close, fmt.Errorf("%w: handshake during a %s exchange", ErrIllegalState, s.mech))
	case stateAuthenticated:
		if err := s.reauthRefusal(req.Version, now); err != nil {
			if s.expiredLocked(now) {
				return refuse(kerr.IllegalSaslState.Code, Close, errors.Join(err, ErrSessionExpired))
			}
			return refuse(kerr.IllegalSaslState.Code, Continue, err)
		}
	}

	m, ok := s.mechs[req.Mechanism]
	if !ok {
		return refuse(kerr.UnsupportedSaslMechanism.Code, Close, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, req.Mechanism))
	}
	s.mech = req.Mechanism
	if s.authed {
		s.reauth = true
		s.lastReauthStart = now
		if req.Mechanism != s.sessionMech {
			s.state = stateReauthBadMech
			s.badMechMsg = fmt.Sprintf("SASL mechanism '%s' requested by client is not supported for re-authentication of mechanism '%s'",
				req.Mechanism, s.sessionMech)
			return resp, Continue, nil
		}
	}
	s.ex = m.Start()
	s.state = stateAuthenticate
	if req.Version == 0 {
		s.state = stateRaw
	}
	return resp, Continue, nil
}

// reauthRefusal says why a handshake on an authenticated connection cannot
// start a re-authentication, or nil if it can.
func (s *Server) reauthRefusal(version int16, now time.Time) error {
	switch {
	case s.expiry.IsZero():
		return fmt.Errorf("%w: re-authentication is not enabled (session has no lifetime)", ErrIllegalState)
	case !s.clientReauth:
		return fmt.Errorf("%w: re-authentication needs a client that used SaslAuthenticate v1+", ErrIllegalState)
	case version < 1:
		return fmt.Errorf("%w: re-authentication needs SaslHandshake v1", ErrIllegalState)
	case !s.lastReauthStart.IsZero() && now.Sub(s.lastReauthStart) < minReauthInterval:
		return fmt.Errorf("%w: re-authentication less than %v after the previous one", ErrIllegalState, minReauthInterval)
	}
	return nil
}
