package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/gateway"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// gatewayServer is the server side of the gateway handshake
// (--auth-gateway-server-*): its token-info plugin and settings.
type gatewayServer struct {
	cfg  config.Gateway
	host *authplugin.Host
}

func newGatewayServer(g config.Gateway, log *slog.Logger) (*gatewayServer, error) {
	if !g.Enable {
		return nil, nil
	}
	h, err := authplugin.NewHost(authplugin.TokenInfo, authplugin.Config{Command: g.Command, Params: g.Params, Timeout: g.Timeout, LogLevel: g.LogLevel}, log.With("plugin", "gateway-server"))
	if err != nil {
		return nil, fmt.Errorf("--auth-gateway-server-command: %w", err)
	}
	return &gatewayServer{cfg: g, host: h}, nil
}

// step admits a connection only after a good gateway handshake: nothing
// of a peer that fails it is forwarded.
func (g *gatewayServer) step() pipeline.Step {
	verify := authplugin.Accepts(g.host)
	return pipeline.Step{Name: "gateway", Run: func(ctx context.Context, c *pipeline.Client) error {
		return gateway.Accept(ctx, c.Conn, g.cfg.Magic, g.cfg.Method, verify, g.cfg.Timeout)
	}}
}

func (g *gatewayServer) close() {
	if g != nil {
		g.host.Close()
	}
}
