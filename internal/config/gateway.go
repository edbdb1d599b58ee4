package config

import (
	"regexp"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/idtoken"
)

// BuiltinJWT is the --auth-gateway-*-command that selects the built-in
// jwt method instead of a plugin: signed JWTs from a file or command on
// the client side, checked against a JWKS on the server side.
const BuiltinJWT = "jwt"

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
	// JWT configures the built-in jwt method (Command "jwt").
	JWT GatewayJWT `yaml:"jwt"`
}

// GatewayJWT is the built-in jwt method: the client side sends the token
// of TokenFile (re-read when it changes) or TokenCommand; the server side
// checks its signature against JWKSFile or JWKSURL, and its iss, aud,
// exp and a sub matching SubjectRegex.
type GatewayJWT struct {
	TokenFile    string `yaml:"tokenFile"`
	TokenCommand string `yaml:"tokenCommand"`
	JWKSFile     string `yaml:"jwksFile"`
	JWKSURL      string `yaml:"jwksUrl"`
	JWKSCAFile   string `yaml:"jwksCaFile"`
	Issuer       string `yaml:"issuer"`
	Audience     string `yaml:"audience"`
	SubjectRegex string `yaml:"subjectRegex"`
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
	client := at == "kafka.gateway."
	if client && idtoken.IsInfo(g.Command) || !client && idtoken.IsProvider(g.Command) {
		p.add(at+"command", "%q is the built-in token %s; this side needs a token %s", g.Command,
			map[bool]string{true: "checker", false: "provider"}[client], map[bool]string{true: "provider", false: "checker"}[client])
	}
	if g.Command != BuiltinJWT {
		return
	}
	j := g.JWT
	if at == "kafka.gateway." {
		if (j.TokenFile == "") == (j.TokenCommand == "") {
			p.add(at+"jwt", "the jwt method needs one of tokenFile and tokenCommand (--auth-gateway-client-jwt-token-file, --auth-gateway-client-jwt-token-command)")
		}
		return
	}
	if (j.JWKSFile == "") == (j.JWKSURL == "") {
		p.add(at+"jwt", "the jwt method needs one of jwksFile and jwksUrl (--auth-gateway-server-jwt-jwks-file, --auth-gateway-server-jwt-jwks-url)")
	}
	if j.SubjectRegex != "" {
		if _, err := regexp.Compile(j.SubjectRegex); err != nil {
			p.add(at+"jwt.subjectRegex", "%v", err)
		}
	}
}
