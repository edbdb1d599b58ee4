package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MechanismOAuthBearer is the OAUTHBEARER mechanism's name.
const MechanismOAuthBearer = "OAUTHBEARER"

// TokenVerifier validates an OAUTHBEARER token (a JWT, or anything else
// the deployment uses) and returns the principal it names and when it
// expires (zero if it does not). Any error means the token is not
// accepted; return a *TokenError to choose the RFC 7628 error status the
// client sees. The error must not contain the token.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (principal string, expiry time.Time, err error)
}

// TokenError is a token rejection with the fields of RFC 7628's error
// challenge, as Kafka's OAuthBearerValidatorCallback carries them. Status
// defaults to "invalid_token".
type TokenError struct {
	Status              string
	Scope               string // optional
	OpenIDConfiguration string // optional
	Err                 error  // internal reason
}

func (e *TokenError) Error() string {
	s := "oauthbearer token rejected: " + e.status()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TokenError) Unwrap() error { return e.Err }

func (e *TokenError) status() string {
	if e.Status == "" {
		return "invalid_token"
	}
	return e.Status
}

// challenge is the JSON error challenge in Kafka's exact formatting
// (OAuthBearerSaslServer.jsonErrorResponse), which clients show verbatim.
func (e *TokenError) challenge() string {
	s := `{"status":"` + e.status() + `"`
	if e.Scope != "" {
		s += `, "scope":"` + e.Scope + `"`
	}
	if e.OpenIDConfiguration != "" {
		s += `, "openid-configuration":"` + e.OpenIDConfiguration + `"`
	}
	return s + "}"
}

// NewOAuthBearer returns the OAUTHBEARER mechanism (RFC 7628) validating
// tokens with v.
//
// Kafka's failure flow is kept: a rejected token is answered (successfully,
// at the SASL layer) with the JSON error challenge; the client then sends
// %x01 and authentication fails with the challenge as the error message.
// Like Kafka, a new client initial response instead of %x01 starts over.
func NewOAuthBearer(v TokenVerifier) Mechanism { return oauthMechanism{v: v} }

type oauthMechanism struct{ v TokenVerifier }

func (oauthMechanism) Name() string { return MechanismOAuthBearer }

func (m oauthMechanism) Start() Exchange { return &oauthExchange{v: m.v} }

type oauthExchange struct {
	v         TokenVerifier
	challenge string // error challenge sent; %x01 expected next
	reason    error  // why the token was rejected, for the log
	id        Identity
}

func (e *oauthExchange) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if e.challenge != "" && len(msg) == 1 && msg[0] == 0x01 {
		return nil, false, failedWith(e.challenge, e.reason)
	}
	e.challenge, e.reason = "", nil
	cir, err := parseOAuthBearer(msg)
	if err != nil {
		return nil, false, failed(MechanismOAuthBearer, err)
	}
	principal, expiry, err := e.v.VerifyToken(ctx, cir.token)
	if err == nil && principal == "" {
		err = errors.New("token verifier returned an empty principal")
	}
	if err != nil {
		var te *TokenError
		if !errors.As(err, &te) {
			te = &TokenError{Err: err}
		}
		e.challenge, e.reason = te.challenge(), err
		return []byte(e.challenge), false, nil
	}
	if cir.authzid != "" && cir.authzid != principal {
		return nil, false, failedWith(fmt.Sprintf(
			"Authentication failed: Client requested an authorization id (%s) that is different from the token's principal name (%s)",
			cir.authzid, principal), nil)
	}
	e.id = Identity{Principal: principal, Expiry: expiry}
	return []byte{}, true, nil
}

func (e *oauthExchange) Identity() Identity { return e.id }

func (e *oauthExchange) rejected() error {
	if e.challenge == "" {
		return nil
	}
	return e.reason
}

// oauthInitialResponse is a parsed RFC 7628 client initial response.
type oauthInitialResponse struct {
	authzid    string
	token      string
	extensions map[string]string
}

// parseOAuthBearer parses a client initial response with Kafka's grammar
// (OAuthBearerClientInitialResponse):
//
//	"n," ["a=" saslname] "," %x01 *(key "=" value %x01) %x01
//
// with key [A-Za-z]+, value [\x21-\x7E \t\r\n]+, a required "auth" key of
// the form `bearer-scheme 1*" " token` (scheme compared case-insensitively,
// token [-_.a-zA-Z0-9]+), and the other keys as extensions. Errors never
// quote the token.
func parseOAuthBearer(msg []byte) (oauthInitialResponse, error) {
	var r oauthInitialResponse
	s, ok := strings.CutPrefix(string(msg), "n,")
	if !ok {
		return r, errors.New("invalid OAUTHBEARER client first message: gs2 header must be \"n,\"")
	}
	header, kvs, ok := strings.Cut(s, ",")
	if !ok {
		return r, errors.New("invalid OAUTHBEARER client first message: unterminated gs2 header")
	}
	if header != "" {
		authzid, ok := strings.CutPrefix(header, "a=")
		if !ok || !validSaslName(authzid) {
			return r, errors.New("invalid OAUTHBEARER client first message: bad authzid")
		}
		r.authzid = authzid // Kafka compares the authzid undecoded
	}
	kvs, ok = strings.CutPrefix(kvs, "\x01")
	if !ok {
		return r, errors.New("invalid OAUTHBEARER client first message: no separator after gs2 header")
	}
	kvs, ok = strings.CutSuffix(kvs, "\x01")
	if !ok {
		return r, errors.New("invalid OAUTHBEARER client first message: not terminated")
	}
	props := map[string]string{}
	if kvs != "" {
		kvs, ok = strings.CutSuffix(kvs, "\x01")
		if !ok {
			return r, errors.New("invalid OAUTHBEARER client first message: key/value pair not terminated")
		}
		for kv := range strings.SplitSeq(kvs, "\x01") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !validExtensionKey(k) || !validExtensionValue(v) {
				return r, errors.New("invalid OAUTHBEARER client first message: bad key/value pair")
			}
			props[k] = v // last one wins, as in Kafka's Utils.parseMap
		}
	}
	auth, ok := props["auth"]
	if !ok {
		return r, errors.New("invalid OAUTHBEARER client first message: 'auth' not specified")
	}
	delete(props, "auth")
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !validAuthScheme(scheme) || !validBearerToken(token) {
		return r, errors.New("invalid OAUTHBEARER client first message: invalid 'auth' format")
	}
	if !strings.EqualFold(scheme, "bearer") {
		return r, fmt.Errorf("invalid scheme in OAUTHBEARER client first message: %q", scheme)
	}
	r.token, r.extensions = token, props
	return r, nil
}

// validSaslName: 1*(%x01-7F except "=" and ",", or "=2C" / "=3D").
func validSaslName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '=':
			if !strings.HasPrefix(s[i:], "=2C") && !strings.HasPrefix(s[i:], "=3D") {
				return false
			}
			i += 2
		case c == 0 || c > 0x7f || c == ',':
			return false
		}
	}
	return true
}

func validExtensionKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func validExtensionValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 0x21 && c <= 0x7e) && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// validAuthScheme: Java's \w+ ([A-Za-z0-9_]+).
func validAuthScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validBearerToken: [-_.a-zA-Z0-9]+, which covers JWTs.
func validBearerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
