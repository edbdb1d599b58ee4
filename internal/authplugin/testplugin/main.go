// Command testplugin is an authentication plugin for the tests, built by
// them: a password authenticator (--username/--password, as the user
// plugin of the proxy we replace takes them) or a token info (tokens whose
// signature part is --token-signature), in the net/rpc form or with --grpc
// the gRPC form. The user or token "crash" makes it exit and "hang" makes
// it never answer; --pid-dir records every start. As a token provider
// (--kind provider) it answers with the content of --token-file, read at
// every call; the content "refuse" makes it answer without success.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/rpc"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/kafka-proxy/kafka-proxy/internal/authplugin"
)

func main() {
	kind := flag.String("kind", "password", "password or token")
	grpcForm := flag.Bool("grpc", false, "serve the gRPC form")
	user := flag.String("username", "", "the one user accepted")
	password := flag.String("password", "", "its password")
	signature := flag.String("token-signature", "", "tokens with this signature part are accepted")
	pidDir := flag.String("pid-dir", "", "write a file per start here")
	tokenFile := flag.String("token-file", "", "provider: the token to hand out")
	flag.Parse()
	if *pidDir != "" {
		_ = os.WriteFile(filepath.Join(*pidDir, fmt.Sprint(os.Getpid())), nil, 0o600)
	}
	misbehave := func(s string) {
		switch s {
		case "crash":
			os.Exit(3)
		case "hang":
			select {}
		}
	}
	switch *kind {
	case "password":
		serve(authplugin.PasswordAuthenticator, *grpcForm, func(args map[string]any) map[string]any {
			u, _ := args["username"].(string)
			p, _ := args["password"].(string)
			misbehave(u)
			ok := u == *user && p == *password
			status := int32(0)
			if !ok {
				status = 1
			}
			return map[string]any{"authenticated": ok, "status": status}
		})
	case "token":
		serve(authplugin.TokenInfo, *grpcForm, func(args map[string]any) map[string]any {
			tok, _ := args["token"].(string)
			misbehave(tok)
			parts := strings.Split(tok, ".")
			ok := len(parts) == 3 && parts[2] == *signature
			status := int32(0)
			if !ok {
				status = 1
			}
			return map[string]any{"success": ok, "status": status}
		})
	case "provider":
		serve(authplugin.TokenProvider, *grpcForm, func(map[string]any) map[string]any {
			data, err := os.ReadFile(*tokenFile)
			tok := strings.TrimSpace(string(data))
			misbehave(tok)
			if err != nil || tok == "refuse" {
				return map[string]any{"success": false, "status": 1, "token": ""}
			}
			return map[string]any{"success": true, "status": 0, "token": tok}
		})
	default:
		fmt.Fprintln(os.Stderr, "unknown --kind", *kind)
		os.Exit(2)
	}
}

// handler answers one call: the request's fields in, the response's out,
// named and typed as the net/rpc form carries them.
type handler func(args map[string]any) map[string]any

// serve makes this binary a plugin of kind with go-plugin itself, so the
// tests check the proxy's host against the real other half.
func serve(kind authplugin.Kind, grpcForm bool, handle handler) {
	cfg := &plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: kind.CookieKey(), MagicCookieValue: "hello"},
		Plugins:         plugin.PluginSet{kind.Name(): &served{method: kind.Method(), handle: handle}},
	}
	if grpcForm {
		cfg.GRPCServer = plugin.DefaultGRPCServer
	}
	plugin.Serve(cfg)
}

type served struct {
	method authplugin.Method
	handle handler
}

var errNoClient = errors.New("testplugin: no client half")

func (p *served) Server(*plugin.MuxBroker) (any, error) { return &Plugin{p: p}, nil }

func (*served) Client(*plugin.MuxBroker, *rpc.Client) (any, error) { return nil, errNoClient }

func (*served) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errNoClient
}

func (p *served) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	m := p.method
	i := strings.LastIndex(m.GRPC, "/")
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: m.GRPC[1:i],
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: m.GRPC[i+1:], Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := authplugin.NewMessage(m.Request)
			if err := dec(req); err != nil {
				return nil, err
			}
			return authplugin.MapToMessage(authplugin.NewMessage(m.Response), p.handle(authplugin.MessageToMap(req))), nil
		}}},
	}, p)
	return nil
}

// Plugin is the net/rpc receiver: go-plugin registers it as "Plugin".
type Plugin struct{ p *served }

// Authenticate is the password authenticator's call.
func (s *Plugin) Authenticate(args map[string]any, resp *map[string]any) error {
	return s.serve("Plugin.Authenticate", args, resp)
}

// VerifyToken is the token info's call.
func (s *Plugin) VerifyToken(args map[string]any, resp *map[string]any) error {
	return s.serve("Plugin.VerifyToken", args, resp)
}

// GetToken is the token provider's call.
func (s *Plugin) GetToken(args map[string]any, resp *map[string]any) error {
	return s.serve("Plugin.GetToken", args, resp)
}

func (s *Plugin) serve(name string, args map[string]any, resp *map[string]any) error {
	if name != s.p.method.RPC {
		return errors.New("testplugin: " + name + " is not this plugin's call")
	}
	*resp = s.p.handle(args)
	return nil
}
