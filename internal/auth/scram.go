package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	xscram "github.com/xdg-go/scram"
)

// ScramCredentialStore finds a user's stored SCRAM credentials.
//
// mechanism is MechanismScramSHA256 or MechanismScramSHA512 (credentials
// differ per hash). For a user that does not exist it returns an error
// wrapping ErrUnknownUser: the mechanism then carries on with fake
// credentials and fails at the proof, like a wrong password, so clients
// cannot enumerate users. Stores should use DefaultScramIterations for the
// same reason. Any other error fails the attempt at once (back end down).
type ScramCredentialStore interface {
	LookupScram(ctx context.Context, mechanism, user string) (ScramCredentials, error)
}

// NewScram returns SCRAM-SHA-256 or SCRAM-SHA-512 (RFC 5802, RFC 7677) as
// Kafka speaks it: no channel binding (gs2 header "n,"), the optional
// authzid must equal the user name, and the KIP-48 "tokenauth" extension
// (delegation tokens) is refused since there is no token store.
func NewScram(mechanism string, store ScramCredentialStore) (Mechanism, error) {
	h, err := scramHash(mechanism)
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("scram: nil credential store")
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	return &scramMechanism{name: mechanism, hash: h, store: store, secret: secret}, nil
}

type scramMechanism struct {
	name   string
	hash   xscram.HashGeneratorFcn
	store  ScramCredentialStore
	secret []byte // keys the fake credentials of unknown users
}

func (m *scramMechanism) Name() string { return m.name }

func (m *scramMechanism) Start() Exchange { return &scramExchange{m: m} }

type scramExchange struct {
	m       *scramMechanism
	conv    *xscram.ServerConversation
	step    int
	user    string
	first   string // client-first-message
	reply   string // server-first-message
	nonce   string // server nonce part
	creds   ScramCredentials
	unknown error // non-nil: the user does not exist (reason for the log)
	id      Identity
}

// Kafka sends this SaslAuthenticationException message as it is.
const scramAuthzMismatch = "Authentication failed: Client requested an authorization id that is different from username"

func (e *scramExchange) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	step := e.step
	e.step++
	switch step {
	case 0:
		reply, err := e.clientFirst(ctx, string(msg))
		return reply, false, err
	case 1:
		return e.clientFinal(string(msg))
	}
	return nil, false, failed(e.m.name, fmt.Errorf("%w: SCRAM takes two messages", ErrIllegalState))
}

func (e *scramExchange) Identity() Identity { return e.id }

// clientFirst handles client-first-message. The credential lookup happens here,
// with ctx, before the conversation runs; the conversation's callback only
// hands over what was found.
func (e *scramExchange) clientFirst(ctx context.Context, msg string) ([]byte, error) {
	cf, err := parseScramClientFirst(msg)
	if err != nil {
		return nil, failed(e.m.name, err)
	}
	if cf.tokenAuth {
		return nil, failed(e.m.name, errors.New("delegation token authentication (tokenauth) is not supported"))
	}
	// Kafka checks the authzid after the lookup; checking it first says
	// nothing more and keeps unknown and known users alike.
	if cf.authzid != "" && cf.authzid != cf.user {
		return nil, failedWith(scramAuthzMismatch, fmt.Errorf("user %q asked for authorization id %q", cf.user, cf.authzid))
	}
	creds, err := e.m.store.LookupScram(ctx, e.m.name, cf.user)
	switch {
	case errors.Is(err, ErrUnknownUser):
		e.unknown = fmt.Errorf("user %q: %w", cf.user, err)
		creds = fakeScramCredentials(e.m.secret, e.m.name, cf.user, e.m.hash().Size())
	case err != nil:
		return nil, failed(e.m.name, fmt.Errorf("scram credentials for user %q could not be obtained: %w", cf.user, err))
	default:
		if err := creds.validate(e.m.hash); err != nil {
			return nil, failed(e.m.name, fmt.Errorf("user %q: %w", cf.user, err))
		}
	}
	e.user, e.first, e.creds = cf.user, msg, creds
	e.nonce = newScramNonce()
	conv, reply, err := e.converse(msg)
	if err != nil {
		return nil, failed(e.m.name, fmt.Errorf("client-first-message: %w", err))
	}
	e.conv, e.reply = conv, reply
	return []byte(reply), nil
}

// converse starts an xdg-go/scram conversation on a client-first-message
// with this exchange's credentials and server nonce, so that it can be
// replayed with the same server-first-message (see clientFinal).
func (e *scramExchange) converse(first string) (*xscram.ServerConversation, string, error) {
	lookup := func(string) (xscram.StoredCredentials, error) {
		return xscram.StoredCredentials{
			KeyFactors: xscram.KeyFactors{Salt: string(e.creds.Salt), Iters: e.creds.Iterations},
			StoredKey:  e.creds.StoredKey,
			ServerKey:  e.creds.ServerKey,
		}, nil
	}
	srv, err := e.m.hash.NewServer(lookup)
	if err != nil {
		return nil, "", err
	}
	nonce := e.nonce
	conv := srv.WithNonceGenerator(func() string { return nonce }).NewConversation()
	reply, err := conv.Step(first)
	return conv, reply, err
}

// clientFinal checks client-final-message: channel binding, nonce, then proof.
// xdg-go/scram compares in constant time.
//
// Kafka does not check the channel-binding attribute c= (it only signs
// it), and franz-go's client sends c=biws ("n,,") even when its gs2 header
// carried an authzid. To accept that client as Kafka does, while still
// accepting RFC clients that echo their header, a c= of "n,," after a
// header with an authzid replays the conversation as if the header had had
// none (the authzid was already checked; it is not part of AuthMessage).
func (e *scramExchange) clientFinal(msg string) ([]byte, bool, error) {
	if e.conv == nil { // the first step failed; the caller should have stopped
		return nil, false, failed(e.m.name, fmt.Errorf("%w: SCRAM exchange already failed", ErrIllegalState))
	}
	conv := e.conv
	if gs2, bare, _ := strings.Cut(strings.TrimPrefix(e.first, "n,"), ","); gs2 != "" && strings.HasPrefix(msg, "c=biws,") {
		replay, reply, err := e.converse("n,," + bare)
		if err == nil && reply == e.reply {
			conv = replay
		}
	}
	if r := scramAttr(msg, "r"); r != "" && r != e.serverNonce() && strings.HasSuffix(r, e.serverNonce()) {
		return e.kafkaNonceFinal(msg)
	}
	reply, err := conv.Step(msg)
	switch {
	case err != nil && e.unknown != nil:
		return nil, false, failed(e.m.name, e.unknown)
	case err != nil:
		return nil, false, failed(e.m.name, fmt.Errorf("user %q: client-final-message: %w", e.user, err))
	case e.unknown != nil || !conv.Valid(): // a fake credential can never verify
		return nil, false, failed(e.m.name, fmt.Errorf("user %q: proof not verified", e.user))
	}
	e.id = Identity{Principal: e.user}
	return []byte(reply), true, nil
}

// serverNonce is the nonce of server-first-message (client and server
// parts).
func (e *scramExchange) serverNonce() string { return scramAttr(e.reply, "r") }

// scramAttr is the value of attribute name ("r", "p", ...) in a SCRAM
// message, "" if absent.
func scramAttr(msg, name string) string {
	for _, kv := range strings.Split(msg, ",") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// kafkaNonceFinal checks a client-final-message whose nonce ends with the
// server's instead of equalling it. Kafka's ScramSaslServer accepts that
// (it checks endsWith), and librdkafka before 2.x's fix sends it (its
// client nonce twice), so a broker-compatible server must too. xdg-go
// refuses such a message, so the proof is verified here, over the
// AuthMessage the client signed (RFC 5802 §3): ClientKey = proof XOR
// HMAC(StoredKey, AuthMessage) must hash to StoredKey.
func (e *scramExchange) kafkaNonceFinal(msg string) ([]byte, bool, error) {
	withoutProof, proofB64, ok := strings.Cut(msg, ",p=")
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if !ok || err != nil || strings.Contains(proofB64, ",") {
		return nil, false, failed(e.m.name, fmt.Errorf("user %q: client-final-message: malformed proof", e.user))
	}
	_, bare, _ := strings.Cut(strings.TrimPrefix(e.first, "n,"), ",")
	authMessage := []byte(bare + "," + e.reply + "," + withoutProof)
	sign := func(key []byte) []byte {
		m := hmac.New(e.m.hash, key)
		m.Write(authMessage)
		return m.Sum(nil)
	}
	clientSig := sign(e.creds.StoredKey)
	if len(proof) != len(clientSig) {
		return nil, false, failed(e.m.name, fmt.Errorf("user %q: proof of %d bytes", e.user, len(proof)))
	}
	for i := range proof {
		proof[i] ^= clientSig[i] // now ClientKey
	}
	h := e.m.hash()
	h.Write(proof)
	switch {
	case e.unknown != nil:
		return nil, false, failed(e.m.name, e.unknown)
	case !hmac.Equal(h.Sum(nil), e.creds.StoredKey):
		return nil, false, failed(e.m.name, fmt.Errorf("user %q: client-final-message: proof invalid (its nonce extends the server's, which Kafka accepts)", e.user))
	}
	e.id = Identity{Principal: e.user}
	return []byte("v=" + base64.StdEncoding.EncodeToString(sign(e.creds.ServerKey))), true, nil
}

// newScramNonce is the server's nonce part: 24 random bytes in base64, as
// xdg-go/scram's default generator makes it.
func newScramNonce() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.StdEncoding.EncodeToString(b)
}

// scramClientFirst is what the mechanism needs from client-first-message
// before the conversation runs.
type scramClientFirst struct {
	authzid   string
	user      string
	tokenAuth bool
}

// parseScramClientFirst reads gs2-header and client-first-message-bare:
//
//	"n," ["a=" saslname] "," "n=" saslname ",r=" nonce ["," ext]*
//
// Kafka accepts only the "n" gs2 flag (no channel binding). Extensions
// other than tokenauth are ignored, as Kafka ignores them.
func parseScramClientFirst(msg string) (scramClientFirst, error) {
	var cf scramClientFirst
	fields := strings.Split(msg, ",")
	if len(fields) < 4 {
		return cf, errors.New("invalid SCRAM client-first-message: too few fields")
	}
	if fields[0] != "n" {
		return cf, errors.New("invalid SCRAM client-first-message: gs2 header must be \"n\" (channel binding is not supported)")
	}
	if fields[1] != "" {
		raw, ok := strings.CutPrefix(fields[1], "a=")
		if !ok {
			return cf, errors.New("invalid SCRAM client-first-message: bad authzid field")
		}
		if cf.authzid, ok = decodeSaslName(raw); !ok || cf.authzid == "" {
			return cf, errors.New("invalid SCRAM client-first-message: bad authzid encoding")
		}
	}
	raw, ok := strings.CutPrefix(fields[2], "n=")
	if !ok {
		return cf, errors.New("invalid SCRAM client-first-message: no user name")
	}
	if cf.user, ok = decodeSaslName(raw); !ok || cf.user == "" {
		return cf, errors.New("invalid SCRAM client-first-message: bad user name encoding")
	}
	if nonce, ok := strings.CutPrefix(fields[3], "r="); !ok || nonce == "" {
		return cf, errors.New("invalid SCRAM client-first-message: no nonce")
	}
	for _, ext := range fields[4:] {
		if v, ok := strings.CutPrefix(ext, "tokenauth="); ok && strings.EqualFold(v, "true") {
			cf.tokenAuth = true
		}
	}
	return cf, nil
}

// decodeSaslName reverses RFC 5802's saslname escaping ("=2C" is ",",
// "=3D" is "="); any other "=" is invalid.
func decodeSaslName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '=')
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		s = s[i+3:]
	}
}
