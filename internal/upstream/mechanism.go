package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/idtoken"
)

// secrets remembers the credentials handed to mechanisms so error texts
// can be scrubbed of them (defence in depth: no code path is meant to put
// a secret in an error, this makes sure none does).
type secrets struct {
	mu   sync.Mutex
	list []string
}

func (s *secrets) add(v string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, have := range s.list {
		if have == v {
			return v
		}
	}
	s.list = append(s.list, v)
	if len(s.list) > 16 {
		s.list = s.list[1:]
	}
	return v
}

func (s *secrets) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...)
}

// newMechanism builds the franz-go client mechanism for cfg and checks
// once that its credentials can be obtained.
func newMechanism(ctx context.Context, cfg config.SASL, sec *secrets, now func() time.Time, tlsOn bool, log *slog.Logger) (sasl.Mechanism, error) {
	method := cfg.NormalizedMethod()
	switch method {
	case config.MechanismPlain, config.MechanismScram256, config.MechanismScram512:
		up, err := newUserPass(cfg, method, tlsOn, log)
		if err != nil {
			return nil, err
		}
		get := func(ctx context.Context) (string, string, error) {
			u, p, err := up(ctx)
			sec.add(p)
			return u, p, err
		}
		switch method {
		case config.MechanismPlain:
			return plain.Plain(func(ctx context.Context) (plain.Auth, error) {
				u, p, err := get(ctx)
				return plain.Auth{User: u, Pass: p}, err
			}), nil
		case config.MechanismScram256:
			return scram.Sha256(func(ctx context.Context) (scram.Auth, error) {
				u, p, err := get(ctx)
				return scram.Auth{User: u, Pass: p}, err
			}), nil
		default:
			return scram.Sha512(func(ctx context.Context) (scram.Auth, error) {
				u, p, err := get(ctx)
				return scram.Auth{User: u, Pass: p}, err
			}), nil
		}
	case config.MechanismOAuthBearer:
		src, err := newTokenSource(ctx, cfg, now, log)
		if err != nil {
			return nil, err
		}
		if _, err := src.Token(ctx); err != nil {
			if c, ok := src.(interface{ Close() }); ok {
				c.Close()
			}
			return nil, scrubErr(err, sec.all())
		}
		m := oauthMechanism{Mechanism: oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			tok, err := src.Token(ctx)
			sec.add(tok)
			return oauth.Auth{Token: tok}, err
		})}
		if c, ok := src.(interface{ Close() }); ok {
			m.close = c.Close
		}
		return m, nil
	case config.MechanismGSSAPI:
		return newGSSAPI(cfg.GSSAPI)
	case config.MechanismAWSMSKIAM:
		creds, err := newAWSCredentials(ctx, cfg.AWS, log)
		if err != nil {
			return nil, err
		}
		if _, err := creds.Retrieve(ctx); err != nil {
			return nil, fmt.Errorf("aws credentials: %w", err)
		}
		// franz-go signs for the region in an *.amazonaws.com broker
		// name, else for AWS_REGION. Behind a tunnel or private DNS the
		// name has none, so --sasl-aws-region must reach the signer
		// through the environment (never overriding an explicit one).
		if cfg.AWS.Region != "" && os.Getenv("AWS_REGION") == "" {
			if err := os.Setenv("AWS_REGION", cfg.AWS.Region); err != nil {
				return nil, fmt.Errorf("aws region: %w", err)
			}
		}
		return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
			c, err := creds.Retrieve(ctx)
			if err != nil {
				return saslaws.Auth{}, fmt.Errorf("aws credentials: %w", err)
			}
			sec.add(c.SecretAccessKey)
			sec.add(c.SessionToken)
			return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken, UserAgent: "kafka-proxy"}, nil
		}), nil
	}
	return nil, fmt.Errorf("sasl method %q is not one of %v", cfg.Method, config.Mechanisms)
}

func newTokenSource(ctx context.Context, cfg config.SASL, now func() time.Time, log *slog.Logger) (tokenSource, error) {
	switch cfg.OAuthSource() {
	case "plugin":
		pl := cfg.Plugin
		if idtoken.IsProvider(pl.Command) {
			p, err := idtoken.NewProvider(ctx, pl.Command, pl.Params, log)
			if err != nil {
				return nil, fmt.Errorf("--sasl-plugin-command: %w", err)
			}
			return p, nil
		}
		h, err := authplugin.NewHost(authplugin.TokenProvider, authplugin.Config{Command: pl.Command, Params: pl.Params, Timeout: pl.Timeout, LogLevel: pl.LogLevel}, log.With("plugin", "sasl"))
		if err != nil {
			return nil, fmt.Errorf("--sasl-plugin-command: %w", err)
		}
		return pluginToken{Provider: authplugin.NewProvider(h), host: h}, nil
	case "file":
		return &fileToken{path: cfg.OAuth.TokenFile}, nil
	case "command":
		timeout := cfg.OAuth.TokenCommandTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		return &commandToken{command: cfg.OAuth.TokenCommand, timeout: timeout, now: now}, nil
	}
	if cfg.AWS.Region == "" {
		return nil, errors.New("OAUTHBEARER needs --sasl-oauth-token-file, --sasl-oauth-token-command or --sasl-aws-region (MSK IAM)")
	}
	creds, err := newAWSCredentials(ctx, cfg.AWS, log)
	if err != nil {
		return nil, err
	}
	return &mskIAMToken{region: cfg.AWS.Region, creds: creds, now: now}, nil
}

// oauthMechanism follows RFC 7628's failure flow, which Apache Kafka uses:
// a rejected token comes back as a JSON error challenge, the client answers
// with a single %x01 and the broker then fails the exchange. franz-go's
// session treats the challenge as a protocol error and loses the broker's
// reason; this keeps it.
type oauthMechanism struct {
	sasl.Mechanism
	close func() // stops a token plugin, if the tokens come from one
}

// Close implements sasl.ClosingMechanism: the Dialer's Close stops the
// token plugin.
func (m oauthMechanism) Close() {
	if m.close != nil {
		m.close()
	}
}

func (m oauthMechanism) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	_, first, err := m.Mechanism.Authenticate(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	return &oauthSession{}, first, nil
}

type oauthSession struct{ errorChallenge string }

func (s *oauthSession) Challenge(resp []byte) (bool, []byte, error) {
	if s.errorChallenge != "" {
		return false, nil, fmt.Errorf("broker rejected the token: %s", s.errorChallenge)
	}
	if len(resp) == 0 {
		return true, nil, nil
	}
	s.errorChallenge = string(resp)
	return false, []byte{0x01}, nil
}

// detail is added to an AuthError when the broker then fails the exchange.
func (s *oauthSession) detail() string { return s.errorChallenge }

// pluginToken is a token-provider plugin's token source; Close stops it.
type pluginToken struct {
	authplugin.Provider
	host *authplugin.Host
}

func (p pluginToken) Close() { p.host.Close() }
