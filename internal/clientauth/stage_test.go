package clientauth

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// authedClient is a client authenticated as alice with lifetime.
func authedClient(t testing.TB, g *Gate, lifetime time.Duration, now func() time.Time) *pipeline.Client {
	t.Helper()
	cfg := g.cfg
	cfg.SessionLifetime, cfg.Now = lifetime, now
	srv, err := auth.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, out, err := srv.HandleHandshake(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}); out != auth.Continue || err != nil {
		t.Fatal(out, err)
	}
	if _, out, err := srv.HandleAuthenticate(t.Context(), &kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00alice-secret")}); out != auth.Authenticated {
		t.Fatal(out, err)
	}
	c := pipeline.NewClient(&net.TCPConn{}, "b:9092")
	c.Listener, c.Remote = &net.TCPAddr{Port: 9092}, &net.TCPAddr{Port: 5555}
	c.SASL, c.Principal = srv, "User:alice"
	return c
}

func frameOf(req kmsg.Request) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, req, 9)
}

// TestStage: re-authentication is answered locally at each version; an
// expired session closes at its next request; a failed re-authentication
// answers, then closes.
func TestStage(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	clock := func() time.Time { return now }
	chain, err := pipeline.NewChain(g.Stage(nil))
	if err != nil {
		t.Fatal(err)
	}
	c := authedClient(t, g, time.Minute, clock)
	run := func(req kmsg.Request) pipeline.Verdict {
		route := chain.Route(req.Key(), req.GetVersion())
		var f []byte
		if route.RequestBody() {
			f = frameOf(req)
		}
		return chain.OnRequest(route, pipeline.NewExchange(c, req.Key(), req.GetVersion(), 9, f))
	}
	meta := &kmsg.MetadataRequest{Version: 12}
	if v := run(meta); v.Action != pipeline.Forward {
		t.Fatalf("Metadata in a valid session: %+v", v)
	}
	for av := int16(1); av <= 2; av++ {
		now = now.Add(2 * time.Second)
		if v := run(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}); v.Action != pipeline.Answer || v.Response.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
			t.Fatalf("re-auth handshake: %+v", v)
		}
		v := run(&kmsg.SASLAuthenticateRequest{Version: av, SASLAuthBytes: []byte("\x00alice\x00alice-secret")})
		resp, _ := v.Response.(*kmsg.SASLAuthenticateResponse)
		if v.Action != pipeline.Answer || resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 60000 || resp.Version != av {
			t.Fatalf("re-auth v%d: %+v %+v", av, v, resp)
		}
	}
	now = now.Add(61 * time.Second)
	if v := run(meta); v.Action != pipeline.Close {
		t.Fatalf("Metadata after expiry: %+v", v)
	}

	c = authedClient(t, g, time.Minute, clock)
	now = now.Add(2 * time.Second)
	run(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"})
	v := run(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: []byte("\x00alice\x00wrong")})
	if resp, _ := v.Response.(*kmsg.SASLAuthenticateResponse); v.Action != pipeline.AnswerClose || resp == nil || resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("failed re-auth: %+v", v)
	}
}

// BenchmarkStagePermit is what local SASL costs every request that is not
// SASL: the route lookup, an Exchange and the session check.
func BenchmarkStagePermit(b *testing.B) {
	g := testGate(b)
	chain, err := pipeline.NewChain(g.Stage(nil))
	if err != nil {
		b.Fatal(err)
	}
	c := authedClient(b, g, time.Hour, time.Now)
	key, version := kmsg.Produce.Int16(), int16(11)
	b.ReportAllocs()
	for b.Loop() {
		route := chain.Route(key, version)
		if v := chain.OnRequest(route, pipeline.NewExchange(c, key, version, 1, nil)); v.Action != pipeline.Forward {
			b.Fatal(v)
		}
	}
}
