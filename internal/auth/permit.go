package auth

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AllowedBeforeAuth reports whether a Kafka broker accepts a request with
// this API key before SASL authentication: ApiVersions, SaslHandshake and
// SaslAuthenticate. Anything else closes the connection.
func AllowedBeforeAuth(key int16) bool {
	switch kmsg.Key(key) {
	case kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		return true
	}
	return false
}

// Permit decides whether a request with this API key may be served now; a
// non-nil error means close the connection without answering, as Kafka
// does:
//
//   - SaslHandshake and SaslAuthenticate always pass: HandleHandshake and
//     HandleAuthenticate apply their own ordering rules.
//   - Before authentication only ApiVersions passes (ErrNotAuthenticated).
//   - During an exchange (including a re-authentication) nothing else
//     passes (ErrIllegalState).
//   - After authentication everything passes until the session expires
//     (ErrSessionExpired); only a re-authentication handshake renews it.
func (s *Server) Permit(key int16) error {
	if kmsg.Key(key) == kmsg.SASLHandshake || kmsg.Key(key) == kmsg.SASLAuthenticate {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	switch s.state {
	case stateFailed:
		return fmt.Errorf("%w: %s after a failed authentication", ErrIllegalState, kmsg.NameForKey(key))
	case stateAuthenticate, stateRaw, stateReauthBadMech:
		return fmt.Errorf("%w: %s during SASL %s authentication", ErrIllegalState, kmsg.NameForKey(key), s.mech)
	case stateInitial:
		if kmsg.Key(key) == kmsg.ApiVersions {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrNotAuthenticated, kmsg.NameForKey(key))
	}
	if s.expiredLocked(now) {
		return fmt.Errorf("%w %v ago (%s)", ErrSessionExpired, now.Sub(s.expiry), kmsg.NameForKey(key))
	}
	return nil
}
