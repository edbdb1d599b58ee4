package clientauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// Stage is the per-request half of local SASL: SaslHandshake and
// SaslAuthenticate on an authenticated connection are a KIP-368
// re-authentication, answered by the proxy; any other request passes
// only while the session is valid (Kafka closes a connection whose
// session expired at its next request). It sees every key kmsg knows, by
// header only, so record data still streams. An ApiVersions answer after
// authentication lists the proxy's SASL versions, as the first one did.
func (g *Gate) Stage(log *slog.Logger) pipeline.Stage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &stage{g: g, log: log}
}

type stage struct {
	g   *Gate
	log *slog.Logger
}

func (*stage) Name() string { return "client-sasl" }

func (*stage) Interest() pipeline.Interest {
	in := pipeline.Interest{Requests: []pipeline.Keys{
		{Key: kmsg.SASLHandshake, MaxVersion: pipeline.AnyVersion, Body: true},
		{Key: kmsg.SASLAuthenticate, MaxVersion: pipeline.AnyVersion, Body: true},
	}, Responses: []pipeline.Keys{pipeline.AllVersions(kmsg.ApiVersions)}}
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		if k := kmsg.Key(key); k != kmsg.SASLHandshake && k != kmsg.SASLAuthenticate && kmsg.RequestForKey(key) != nil {
			in.Requests = append(in.Requests, pipeline.AllVersions(k))
		}
	}
	return in
}

func (s *stage) OnRequest(ex *pipeline.Exchange) pipeline.Verdict {
	srv := ex.Client.SASL
	if srv == nil {
		return pipeline.Refuse(errors.New("no SASL session on a listener that requires one"))
	}
	switch kmsg.Key(ex.Key) {
	case kmsg.SASLHandshake, kmsg.SASLAuthenticate:
	default:
		if err := srv.Permit(ex.Key); err != nil {
			return pipeline.Refuse(err)
		}
		return pipeline.Pass()
	}
	req, err := ex.Request()
	if err != nil {
		return pipeline.Refuse(err)
	}
	listener := ex.Client.Listener.String()
	mech := srv.Mechanism()
	var resp kmsg.Response
	var out auth.Outcome
	var reason error
	switch r := req.(type) {
	case *kmsg.SASLHandshakeRequest:
		resp, out, reason = srv.HandleHandshake(r)
	case *kmsg.SASLAuthenticateRequest:
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		resp, out, reason = srv.HandleAuthenticate(ctx, r)
		cancel()
	}
	log := s.log.With("remote", ex.Client.Remote.String(), "principal", ex.Client.Principal)
	switch out {
	case auth.Reauthenticated:
		s.g.hooks.ClientAuth(listener, mech, ResultReauthenticated)
		log.Debug("client re-authenticated", "mechanism", mech, "session_expiry", srv.SessionExpiry())
	case auth.Close:
		// The session's closing log line carries the reason.
		s.g.hooks.ClientAuth(listener, mech, ResultFailure)
		return pipeline.ReplyClose(resp, fmt.Errorf("%w: sasl %s: %s", ErrFailed, mech, errString(reason)))
	}
	if reason != nil {
		// Refused but the connection stays (a re-authentication the
		// session does not allow): the client reads the error.
		log.Info("client sasl request refused", "api_key", kmsg.NameForKey(ex.Key), "reason", reason.Error())
	}
	return pipeline.Reply(resp)
}

// OnResponse puts the proxy's SASL versions into ApiVersions answers.
func (*stage) OnResponse(_ *pipeline.Exchange, resp kmsg.Response) (bool, error) {
	r := resp.(*kmsg.ApiVersionsResponse)
	if r.ErrorCode != 0 {
		return false, nil
	}
	advertiseSASL(r)
	return true, nil
}

func errString(err error) string {
	if err == nil {
		return "refused"
	}
	return err.Error()
}
