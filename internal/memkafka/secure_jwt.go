package memkafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// JWTIssuer signs OAUTHBEARER test tokens (ES256 JWTs) and verifies them
// in the fronts; the stdlib suffices for one algorithm, so the test kit
// does not need a JWT library.
type JWTIssuer struct {
	key    *ecdsa.PrivateKey
	Issuer string
}

// NewJWTIssuer makes an issuer with a fresh P-256 key.
func NewJWTIssuer() (*JWTIssuer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &JWTIssuer{key: k, Issuer: "memkafka"}, nil
}

// Issue returns a token for subject valid for ttl (negative: already
// expired).
func (j *JWTIssuer) Issue(subject string, ttl time.Duration) string {
	now := time.Now()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": subject, "iss": j.Issuer, "iat": now.Unix(), "exp": now.Add(ttl).Unix()})
	signing := header + "." + base64.RawURLEncoding.EncodeToString(claims)
	h := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, j.key, h[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Verify checks signature, issuer and expiry, returning the subject
// (Kafka's principal name) and the expiry.
func (j *JWTIssuer) Verify(token string, now time.Time) (string, time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", time.Time{}, errors.New("not a JWT")
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", time.Time{}, errors.New("bad JWT header encoding")
	}
	var h struct{ Alg string }
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "ES256" {
		return "", time.Time{}, fmt.Errorf("unsupported JWT alg %q", h.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return "", time.Time{}, errors.New("bad JWT signature encoding")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&j.key.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", time.Time{}, errors.New("JWT signature does not verify")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", time.Time{}, errors.New("bad JWT payload encoding")
	}
	var c struct {
		Sub string
		Iss string
		Exp int64
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", time.Time{}, errors.New("bad JWT claims")
	}
	if c.Iss != j.Issuer {
		return "", time.Time{}, fmt.Errorf("JWT issuer %q is not %q", c.Iss, j.Issuer)
	}
	exp := time.Unix(c.Exp, 0)
	if c.Exp == 0 || !now.Before(exp) {
		return "", time.Time{}, errors.New("JWT expired")
	}
	if c.Sub == "" {
		return "", time.Time{}, errors.New("JWT has no sub")
	}
	return c.Sub, exp, nil
}
