package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	xscram "github.com/xdg-go/scram"
)

// SCRAM mechanism names and Kafka's iteration bounds.
const (
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	// MinScramIterations is Kafka's minimum for both SCRAM mechanisms; a
	// broker refuses stored credentials with fewer, and clients refuse
	// servers asking for fewer.
	MinScramIterations = 4096
	// DefaultScramIterations is what kafka-configs uses and what unknown
	// users are answered with (see ScramCredentialStore).
	DefaultScramIterations = 4096
	scramSaltLen           = 32
)

// ScramCredentials is what a server stores per user and mechanism
// (RFC 5802 §3), the same fields Kafka keeps: never the password itself.
type ScramCredentials struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// scramHash returns the hash of a SCRAM mechanism.
func scramHash(mechanism string) (xscram.HashGeneratorFcn, error) {
	switch mechanism {
	case MechanismScramSHA256:
		return xscram.SHA256, nil
	case MechanismScramSHA512:
		return xscram.SHA512, nil
	}
	return nil, fmt.Errorf("%w: %q is not a SCRAM mechanism", ErrUnsupportedMechanism, mechanism)
}

// NewScramCredentials derives stored credentials for password with a fresh
// random salt, for users files and tests. iterations must be at least
// MinScramIterations. Like Kafka, the password is used as its UTF-8 bytes,
// without SASLprep.
func NewScramCredentials(mechanism, password string, iterations int) (ScramCredentials, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return ScramCredentials{}, fmt.Errorf("scram salt: %w", err)
	}
	return ScramCredentialsWithSalt(mechanism, password, salt, iterations)
}

// ScramCredentialsWithSalt derives stored credentials from a known salt
// (for files that store salt and password, and reproducible tests).
func ScramCredentialsWithSalt(mechanism, password string, salt []byte, iterations int) (ScramCredentials, error) {
	h, err := scramHash(mechanism)
	if err != nil {
		return ScramCredentials{}, err
	}
	switch {
	case password == "":
		return ScramCredentials{}, errors.New("scram: empty password")
	case len(salt) == 0:
		return ScramCredentials{}, errors.New("scram: empty salt")
	case iterations < MinScramIterations:
		return ScramCredentials{}, fmt.Errorf("scram: %d iterations is less than the minimum %d", iterations, MinScramIterations)
	}
	c, err := h.NewClientUnprepped("", password, "")
	if err != nil {
		return ScramCredentials{}, fmt.Errorf("scram: %w", err)
	}
	sc, err := c.GetStoredCredentialsWithError(xscram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return ScramCredentials{}, fmt.Errorf("scram: %w", err)
	}
	return ScramCredentials{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  sc.StoredKey,
		ServerKey:  sc.ServerKey,
	}, nil
}

// validate checks what a store returned before it is used, so a broken
// store fails the attempt instead of the protocol code.
func (c ScramCredentials) validate(h xscram.HashGeneratorFcn) error {
	size := h().Size()
	switch {
	case len(c.Salt) == 0:
		return errors.New("stored scram credentials have no salt")
	case c.Iterations < MinScramIterations:
		return fmt.Errorf("stored scram iterations %d is less than the minimum %d", c.Iterations, MinScramIterations)
	case len(c.StoredKey) != size || len(c.ServerKey) != size:
		return fmt.Errorf("stored scram keys are not %d bytes", size)
	}
	return nil
}

// fakeScramCredentials answers an unknown user with credentials that look
// like a real user's (same salt length and default iteration count) and
// stay the same across attempts, derived from a per-mechanism secret; no
// password matches them, so the exchange fails at the proof exactly as a
// wrong password does and the client cannot tell users apart.
func fakeScramCredentials(secret []byte, mechanism, user string, size int) ScramCredentials {
	derive := func(label string, n int) []byte {
		m := hmac.New(func() hash.Hash { return sha512.New() }, secret)
		m.Write([]byte(label + "\x00" + mechanism + "\x00" + user))
		return m.Sum(nil)[:n]
	}
	return ScramCredentials{
		Salt:       derive("salt", scramSaltLen),
		Iterations: DefaultScramIterations,
		StoredKey:  derive("stored", size),
		ServerKey:  derive("server", size),
	}
}
