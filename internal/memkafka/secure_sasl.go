package memkafka

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// The credential back ends of the brokers' SASL: one user, or a token
// check. The protocol is internal/auth's, as on the proxy's listeners.

// password is the one PLAIN user.
type password struct{ user, pass string }

func (p password) VerifyPassword(_ context.Context, user, pass string) error {
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(p.user)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(p.pass)) == 1
	switch {
	case !userOK:
		return auth.ErrUnknownUser
	case !passOK:
		return auth.ErrInvalidCredentials
	}
	return nil
}

// scramUser is the one SCRAM user.
type scramUser struct {
	user  string
	creds auth.ScramCredentials
}

func (s scramUser) LookupScram(_ context.Context, _, user string) (auth.ScramCredentials, error) {
	if user != s.user {
		return auth.ScramCredentials{}, auth.ErrUnknownUser
	}
	return s.creds, nil
}

// tokenFunc adapts a token check to auth.TokenVerifier.
type tokenFunc func(token string) (principal string, expiry time.Time, err error)

func (f tokenFunc) VerifyToken(_ context.Context, token string) (string, time.Time, error) {
	p, exp, err := f(token)
	if err != nil {
		return "", time.Time{}, &auth.TokenError{Err: err}
	}
	return p, exp, nil
}

// mskIAMMechanism is Amazon MSK's AWS_MSK_IAM: one client message, a JSON
// payload with a SigV4-signed kafka-cluster:Connect, answered with a JSON
// version and request id.
type mskIAMMechanism struct{ secrets map[string]string }

func (mskIAMMechanism) Name() string { return config.MechanismAWSMSKIAM }

func (m mskIAMMechanism) Start() auth.Exchange { return &mskIAMExchange{secrets: m.secrets} }

type mskIAMExchange struct {
	secrets map[string]string
	id      auth.Identity
}

func (e *mskIAMExchange) Step(_ context.Context, msg []byte) ([]byte, bool, error) {
	p, exp, err := verifyAWSMSKIAMPayload(msg, e.secrets, time.Now())
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", auth.ErrInvalidCredentials, err)
	}
	e.id = auth.Identity{Principal: p, Expiry: exp}
	return []byte(`{"version":"2020_10_22","request-id":"memkafka"}`), true, nil
}

func (e *mskIAMExchange) Identity() auth.Identity { return e.id }
