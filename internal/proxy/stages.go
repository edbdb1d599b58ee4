package proxy

import (
	"fmt"
	"io"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// runRequestStages runs the request stages that route names. It returns
// the frame to forward when a stage read the whole request (nil: splice it
// from the client as usual), or local, a response frame answering the
// request in its place (the request consumed, nothing forwarded), or an
// error, which closes the connection. A stage that answers and closes
// ends the session (see end): the answer and every earlier response are
// delivered, nothing after it is read. after is what a stage wants run on
// the broker's response.
func (s *Session) runRequestStages(route pipeline.Route, h wire.RequestHeader, head []byte, total int) (frame, local []byte, after pipeline.AfterResponse, sent int16, err error) {
	sent = h.Version
	if route.RequestBody() {
		// Bounded by MaxFrameSize, checked before this.
		frame = make([]byte, total)
		if _, err := io.ReadFull(s.clientR, frame); err != nil {
			return nil, nil, nil, sent, fmt.Errorf("read request: %w", err)
		}
	}
	ex := pipeline.NewExchange(s.peer, h.Key, h.Version, h.CorrelationID, frame)
	if frame == nil {
		ex.Unread(head, s.clientR, total) // a header-only stage may still read it
	}
	v := s.opts.Stages.OnRequest(route, ex)
	switch v.Action {
	case pipeline.Close:
		return nil, nil, nil, sent, v.Err
	case pipeline.Answer, pipeline.AnswerClose:
		if !ex.BodyRead() {
			if _, err := s.clientR.Discard(total); err != nil {
				return nil, nil, nil, sent, fmt.Errorf("read request: %w", err)
			}
		}
		if v.Action == pipeline.AnswerClose {
			s.end(v.Err) // after the discard: end cuts reads from the client short
		}
		return nil, pipeline.AppendResponse(nil, v.Response, h.CorrelationID), nil, sent, nil
	}
	if sent = ex.SentVersion(); sent != h.Version {
		a, _ := wire.ResponseFlexible(h.Key, h.Version)
		b, _ := wire.ResponseFlexible(h.Key, sent)
		if a != b {
			return nil, nil, nil, sent, fmt.Errorf("a stage forwarded %s v%d as v%d, whose response header has another form", keyName(h.Key), h.Version, sent)
		}
	}
	return ex.Frame(), nil, ex.AfterFunc(), sent, nil
}

// runResponseStages runs the response stages that route names on one
// response body and returns the body to send.
func (s *Session) runResponseStages(route pipeline.Route, e inflight, body []byte) ([]byte, bool, error) {
	ex := pipeline.NewExchange(s.peer, e.key, e.version, e.corr, nil)
	ex.AnsweredAt(e.wireVersion())
	ex.After(e.after)
	return s.opts.Stages.OnResponse(route, ex, body)
}
