package server

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/gateway"
	"github.com/kafka-proxy/kafka-proxy/internal/idtoken"
	"github.com/kafka-proxy/kafka-proxy/internal/jwt"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// gatewayServer is the server side of the gateway handshake
// (--auth-gateway-server-*): its token-info plugin and settings.
type gatewayServer struct {
	cfg    config.Gateway
	verify gateway.Verifier
	host   *authplugin.Host // nil for the built-in jwt method
}

func newGatewayServer(g config.Gateway, log *slog.Logger) (*gatewayServer, error) {
	if !g.Enable {
		return nil, nil
	}
	if g.Command == config.BuiltinJWT {
		v, err := gatewayJWT(g.JWT, log)
		if err != nil {
			return nil, err
		}
		return &gatewayServer{cfg: g, verify: v}, nil
	}
	if idtoken.IsInfo(g.Command) {
		ctx, cancel := context.WithTimeout(context.Background(), g.Timeout+5*time.Second)
		defer cancel()
		v, err := idtoken.NewInfo(ctx, g.Command, g.Params, log)
		if err != nil {
			return nil, fmt.Errorf("--auth-gateway-server-command: %w", err)
		}
		return &gatewayServer{cfg: g, verify: v}, nil
	}
	h, err := authplugin.NewHost(authplugin.TokenInfo, authplugin.Config{Command: g.Command, Params: g.Params, Timeout: g.Timeout, LogLevel: g.LogLevel}, log.With("plugin", "gateway-server"))
	if err != nil {
		return nil, fmt.Errorf("--auth-gateway-server-command: %w", err)
	}
	return &gatewayServer{cfg: g, verify: authplugin.Accepts(h), host: h}, nil
}

// gatewayJWT is the built-in jwt method's check: signature against the
// JWKS, iss, aud, exp, and the sub against the regular expression.
func gatewayJWT(c config.GatewayJWT, log *slog.Logger) (gateway.Verifier, error) {
	var keys jwt.Keys
	var err error
	if c.JWKSFile != "" {
		keys, err = jwt.OpenFile(c.JWKSFile, 0, log)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		keys, err = jwt.OpenURL(ctx, c.JWKSURL, c.JWKSCAFile, time.Hour, log)
	}
	if err != nil {
		return nil, fmt.Errorf("--auth-gateway-server-jwt: %w", err)
	}
	var subject *regexp.Regexp
	if c.SubjectRegex != "" {
		if subject, err = regexp.Compile(c.SubjectRegex); err != nil {
			return nil, fmt.Errorf("--auth-gateway-server-jwt-subject-regex: %w", err)
		}
	}
	v := jwt.New(jwt.Config{Issuer: c.Issuer, Audience: c.Audience, ClockSkew: 30 * time.Second}, keys, log)
	return func(ctx context.Context, token string) error {
		sub, _, err := v.VerifyToken(ctx, token)
		if err != nil {
			return err
		}
		if subject != nil && !subject.MatchString(sub) {
			return fmt.Errorf("subject %q does not match --auth-gateway-server-jwt-subject-regex", sub)
		}
		return nil
	}, nil
}

// step admits a connection only after a good gateway handshake: nothing
// of a peer that fails it is forwarded.
func (g *gatewayServer) step() pipeline.Step {
	return pipeline.Step{Name: "gateway", Run: func(ctx context.Context, c *pipeline.Client) error {
		return gateway.Accept(ctx, c.Conn, g.cfg.Magic, g.cfg.Method, g.verify, g.cfg.Timeout)
	}}
}

func (g *gatewayServer) close() {
	if g != nil && g.host != nil {
		g.host.Close()
	}
}
