package auth

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Sentinels for errors.Is. Credential back ends return ErrInvalidCredentials
// or ErrUnknownUser (wrapped as they like) to say "the client is wrong", as
// opposed to "the back end failed", which Kafka reports differently.
var (
	// ErrInvalidCredentials: the user, password or token is not valid.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrUnknownUser: no such user. Mechanisms never reveal it to clients.
	ErrUnknownUser = errors.New("unknown user")
	// ErrMessageTooLarge: a SASL message is above the Server's cap.
	ErrMessageTooLarge = errors.New("sasl message too large")
	// ErrIllegalState: a SASL request arrived out of order.
	ErrIllegalState = errors.New("illegal sasl state")
	// ErrUnsupportedMechanism: the client asked for a mechanism the
	// listener does not offer.
	ErrUnsupportedMechanism = errors.New("unsupported sasl mechanism")
	// ErrNotAuthenticated: a request that needs authentication came before
	// it. The connection must be closed (Kafka closes it without a reply).
	ErrNotAuthenticated = errors.New("request before sasl authentication")
	// ErrSessionExpired: the session lifetime passed without
	// re-authentication. The connection must be closed, as Kafka does.
	ErrSessionExpired = errors.New("sasl session expired")
)

// AuthError is a failed SASL step. It keeps the two audiences apart:
// Message is sent to the client in SaslAuthenticate's error_message and
// uses Kafka's wording (so clients and their users see what a broker would
// say, and learn nothing a broker would not tell them), while Err is the
// internal reason for the log. Neither ever contains a password or token.
type AuthError struct {
	// Code is the Kafka error code for the response, normally
	// SASL_AUTHENTICATION_FAILED (58).
	Code int16
	// Message is the client-facing error message.
	Message string
	// Err is the internal reason; may be nil.
	Err error
}

func (e *AuthError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *AuthError) Unwrap() error { return e.Err }

// invalidCredentials is Kafka's generic failure, which it sends whenever a
// mechanism throws a plain SaslException: the message deliberately says
// nothing about why (e.g. whether the user exists).
func invalidCredentials(mechanism string, reauth bool, reason error) *AuthError {
	phase := "authentication"
	if reauth {
		phase = "re-authentication"
	}
	return &AuthError{
		Code:    kerr.SaslAuthenticationFailed.Code,
		Message: "Authentication failed during " + phase + " due to invalid credentials with SASL mechanism " + mechanism,
		Err:     reason,
	}
}

// failed is a mechanism error with Kafka's generic client message. The
// Server rewords it for re-authentication (see Server.fail).
func failed(mechanism string, reason error) *AuthError {
	return invalidCredentials(mechanism, false, reason)
}

// failedWith is a mechanism error whose client message is specific, as
// Kafka's SaslAuthenticationException messages are.
func failedWith(message string, reason error) *AuthError {
	return &AuthError{Code: kerr.SaslAuthenticationFailed.Code, Message: message, Err: reason}
}
