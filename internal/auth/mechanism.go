package auth

import (
	"context"
	"time"
)

// Mechanism is one SASL mechanism a listener offers. It is immutable and
// shared by every connection; per-attempt state lives in the Exchange that
// Start returns.
type Mechanism interface {
	// Name is the IANA mechanism name the client asks for in SaslHandshake
	// ("PLAIN", "SCRAM-SHA-256", ...).
	Name() string
	// Start begins one authentication attempt.
	Start() Exchange
}

// Exchange is the server side of one authentication attempt. SASL is a
// sequence of client messages each answered by a server message; PLAIN
// needs one step, SCRAM two, OAUTHBEARER one or two (error challenge).
type Exchange interface {
	// Step consumes the client's next message and returns the server's
	// reply. done reports that authentication succeeded with this step
	// (Identity is then valid). A non-nil error ends the attempt; it is an
	// *AuthError whose Message is what the client may see. After done or an
	// error, Step must not be called again.
	//
	// ctx bounds credential lookups (LDAP, plugins) made during the step.
	Step(ctx context.Context, clientMsg []byte) (serverMsg []byte, done bool, err error)
	// Identity is the authenticated identity once Step reported done.
	Identity() Identity
}

// Identity is who a completed exchange authenticated.
type Identity struct {
	// Principal is the user name, without Kafka's "User:" type prefix.
	Principal string
	// Expiry is when the credential stops being valid (an OAUTHBEARER
	// token's exp); zero if the credential does not expire. The session
	// lifetime sent to the client never goes beyond it, as in Kafka.
	Expiry time.Time
}
