package config

import "time"

// Gateway is one side of the proxy-to-proxy handshake of the proxy we
// replace (--auth-gateway-client-* on the proxy that dials,
// --auth-gateway-server-* on the one it dials): magic and method must
// match on both sides, and a plugin provides (client) or checks (server)
// the token.
type Gateway struct {
	Enable bool `yaml:"enable"`
	// Command is the plugin: a token provider on the client side, a token
	// info on the server side; Params are its arguments.
	Command  string        `yaml:"command"`
	Params   []string      `yaml:"params" secret:"true"`
	LogLevel string        `yaml:"logLevel"`
	Magic    uint64        `yaml:"magic"`
	Method   string        `yaml:"method"`
	Timeout  time.Duration `yaml:"timeout"`
}

func defaultGateway() Gateway { return Gateway{LogLevel: "trace", Timeout: 10 * time.Second} }

func validateGateway(p *Problems, at string, g Gateway) {
	if !g.Enable {
		return
	}
	if g.Command == "" {
		p.add(at+"command", "is required: the plugin that %s the gateway token", map[bool]string{true: "provides", false: "checks"}[at == "kafka.gateway."])
	}
	if g.Method == "" {
		p.add(at+"method", "is required: both sides must name the same method")
	}
	if g.Timeout <= 0 {
		p.add(at+"timeout", "must be positive")
	}
}
