package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// MechanismPlain is the PLAIN mechanism's name.
const MechanismPlain = "PLAIN"

// PasswordVerifier checks a user name and password for PLAIN. Users files,
// LDAP binds and plugins implement it.
//
// It returns nil for valid credentials, an error wrapping
// ErrInvalidCredentials or ErrUnknownUser when the user or password is
// wrong, and any other error when it could not decide (back end down);
// Kafka words the two failures differently. Implementations should spend
// the same time on an unknown user as on a wrong password, and must not put
// the password in the error.
type PasswordVerifier interface {
	VerifyPassword(ctx context.Context, user, password string) error
}

// NewPlain returns the PLAIN mechanism (RFC 4616) checking passwords with v.
func NewPlain(v PasswordVerifier) Mechanism { return plainMechanism{v: v} }

type plainMechanism struct{ v PasswordVerifier }

func (plainMechanism) Name() string { return MechanismPlain }

func (m plainMechanism) Start() Exchange { return &plainExchange{v: m.v} }

type plainExchange struct {
	v    PasswordVerifier
	used bool
	id   Identity
}

// Kafka's PlainSaslServer messages, which it sends to the client as they
// are (SaslAuthenticationException), so they must stay this vague.
const (
	plainBadCredentials = "Authentication failed: Invalid username or password"
	plainCannotVerify   = "Authentication failed: credentials for user could not be verified"
	plainAuthzMismatch  = "Authentication failed: Client requested an authorization id that is different from username"
)

// Step checks the single PLAIN message. The order of checks is Kafka's:
// format, empty fields, the password, and only then the authzid, so a
// client learns nothing about the authzid rule without valid credentials.
func (e *plainExchange) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if e.used {
		return nil, false, failed(MechanismPlain, fmt.Errorf("%w: PLAIN takes one message", ErrIllegalState))
	}
	e.used = true
	authzid, user, password, err := parsePlain(msg)
	if err != nil {
		return nil, false, failed(MechanismPlain, err)
	}
	if user == "" {
		return nil, false, failed(MechanismPlain, errors.New("username not specified"))
	}
	if password == "" {
		return nil, false, failed(MechanismPlain, fmt.Errorf("password not specified for user %q", user))
	}
	if err := e.v.VerifyPassword(ctx, user, password); err != nil {
		reason := fmt.Errorf("user %q: %w", user, err)
		if errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrUnknownUser) {
			return nil, false, failedWith(plainBadCredentials, reason)
		}
		return nil, false, failedWith(plainCannotVerify, reason)
	}
	if authzid != "" && authzid != user {
		return nil, false, failedWith(plainAuthzMismatch, fmt.Errorf("user %q asked for authorization id %q", user, authzid))
	}
	e.id = Identity{Principal: user}
	return []byte{}, true, nil
}

func (e *plainExchange) Identity() Identity { return e.id }

// parsePlain splits an RFC 4616 message: [authzid] NUL authcid NUL passwd.
// Exactly two NULs are required (NUL is not a SAFE character in any field).
// The error never includes the message, which holds the password.
func parsePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	if n := bytes.Count(msg, []byte{0}); n != 2 {
		return "", "", "", fmt.Errorf("invalid SASL/PLAIN message: expected 3 NUL-separated fields, got %d", n+1)
	}
	a, rest, _ := bytes.Cut(msg, []byte{0})
	u, p, _ := bytes.Cut(rest, []byte{0})
	return string(a), string(u), string(p), nil
}
