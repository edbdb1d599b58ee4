package pipeline

import (
	"bufio"
	"fmt"
	"io"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AnyVersion as a Keys.MaxVersion covers every version, including those
// newer than kmsg knows.
const AnyVersion = math.MaxInt16

// Keys names the versions MinVersion..MaxVersion (inclusive) of one API key.
type Keys struct {
	Key                    kmsg.Key
	MinVersion, MaxVersion int16
	// Body: the stage reads the decoded request (Exchange.Request), so the
	// whole frame is read before stages run. Without it a stage sees the
	// header and the frame's first bytes (Exchange.Head), and the request
	// is spliced through unless the stage asks for it after all.
	Body bool
}

// AllVersions is every version of key, header only.
func AllVersions(key kmsg.Key) Keys { return Keys{Key: key, MaxVersion: AnyVersion} }

// Interest is what a stage wants to see. Requests and responses that no
// stage wants pass through the proxy undecoded.
type Interest struct {
	Requests  []Keys
	Responses []Keys
}

// Stage is one concern on the request path.
type Stage interface {
	// Name appears in errors and logs.
	Name() string
	// Interest is read once, when the chain is built.
	Interest() Interest
}

// RequestStage decides about requests it declared interest in.
type RequestStage interface {
	Stage
	OnRequest(ex *Exchange) Verdict
}

// ResponseStage may change responses it declared interest in. resp is the
// decoded response, of the concrete kmsg type for its key and at the
// request's version; changed says whether it must be re-encoded.
type ResponseStage interface {
	Stage
	OnResponse(ex *Exchange, resp kmsg.Response) (changed bool, err error)
}

// StreamingStage relays some responses without decoding them whole (Fetch
// v16+, whose addresses follow the record data; Metadata, whose topics
// follow the addresses). The chain streams a
// response only when this stage is the only one that wants it; otherwise
// it is decoded and OnResponse runs.
type StreamingStage interface {
	ResponseStage
	Streams(key, version int16) bool
	// Stream relays one response body of n bytes, of key at version:
	// head is the response header with its size prefix (already read
	// from r; the stage writes it, with a new size if the body's length
	// changes), the body follows in r and then raw, r's underlying reader,
	// so large values can bypass r's buffer. buf is scratch; progress (may
	// be nil) is called as bytes move.
	Stream(w io.Writer, r *bufio.Reader, raw io.Reader, head []byte, n int, key, version int16, buf []byte, progress func()) error
}

// Action is what happens to a request.
type Action uint8

const (
	// Forward sends the request to the broker (rewritten, if a stage
	// replaced it).
	Forward Action = iota
	// Answer sends the stage's response to the client in the request's
	// place in the response order; nothing reaches the broker.
	Answer
	// Close ends the connection at once.
	Close
	// AnswerClose sends the stage's response in the request's place, then
	// ends the connection once it and every earlier response are
	// delivered (a failed authentication: the client reads why).
	AnswerClose
)

// Verdict is a request stage's decision.
type Verdict struct {
	Action   Action
	Response kmsg.Response // Answer, AnswerClose: at the version the client can read
	Err      error         // Close, AnswerClose: why, for the log
}

// Pass lets the request go on to the next stage and then the broker.
func Pass() Verdict { return Verdict{} }

// Reply answers the request locally with resp.
func Reply(resp kmsg.Response) Verdict { return Verdict{Action: Answer, Response: resp} }

// ReplyClose answers the request locally with resp, then closes the
// connection because of err.
func ReplyClose(resp kmsg.Response, err error) Verdict {
	return Verdict{Action: AnswerClose, Response: resp, Err: err}
}

// Refuse closes the connection because of err.
func Refuse(err error) Verdict { return Verdict{Action: Close, Err: err} }

// Exchange is one request (and later its response) as stages see it.
type Exchange struct {
	Client        *Client
	Key           int16
	Version       int16
	CorrelationID int32

	frame    []byte    // the whole request frame, size included, once read
	head     []byte    // the frame's first bytes, while it is unread
	rest     io.Reader // the unread frame, size bytes, when a stage asks for it
	size     int
	loadErr  error // why reading rest failed
	req      kmsg.Request
	replaced bool
	// sentAs, when upgraded, is the version the request goes to the
	// broker at (ReplaceAt), and so the version its answer comes back in.
	sentAs   int16
	upgraded bool
	after    AfterResponse
}

// AfterResponse completes the broker's response to one request before the
// response stages see it: a stage that forwarded only part of a request
// (Replace) puts back the answers it gave itself, or takes out what the
// client may not see.
type AfterResponse func(resp kmsg.Response)

// NewExchange is an exchange for a request with this header. frame is the
// whole request frame (size prefix included) or nil when no stage reads
// the body.
func NewExchange(c *Client, key, version int16, corr int32, frame []byte) *Exchange {
	return &Exchange{Client: c, Key: key, Version: version, CorrelationID: corr, frame: frame}
}

// Unread gives a header-only exchange the frame's first bytes as
// buffered (size prefix included) and r, from which the whole frame of
// size bytes (bounded by the caller) is read if a stage asks for the
// request after all.
func (e *Exchange) Unread(head []byte, r io.Reader, size int) {
	e.head, e.rest, e.size = head, r, size
}

// Head is the request frame's first bytes (size prefix included): the
// whole frame once read, else as much as the connection had buffered. A
// stage that can decide from a few leading fields reads them here and
// leaves the rest of the request to stream through.
func (e *Exchange) Head() []byte {
	if e.frame != nil {
		return e.frame
	}
	return e.head
}

// BodyRead reports whether the whole frame has been read from the client.
func (e *Exchange) BodyRead() bool { return e.frame != nil }

// Request decodes the request body, once, reading the frame first if only
// its head was (Unread).
func (e *Exchange) Request() (kmsg.Request, error) {
	if e.req != nil {
		return e.req, nil
	}
	if e.loadErr != nil {
		return nil, e.loadErr
	}
	if e.frame == nil && e.rest != nil {
		f := make([]byte, e.size)
		_, err := io.ReadFull(e.rest, f)
		e.head, e.rest = nil, nil // read once: a failed read left the stream mid-frame
		if err != nil {
			e.loadErr = fmt.Errorf("read request: %w", err)
			return nil, e.loadErr
		}
		e.frame = f
	}
	if e.frame == nil {
		return nil, fmt.Errorf("%s v%d: request body not read (the stage did not declare Body interest)", kmsg.NameForKey(e.Key), e.Version)
	}
	req, err := decodeRequest(e.frame[4:], e.Key, e.Version)
	if err != nil {
		return nil, err
	}
	e.req = req
	return req, nil
}

// Replace forwards req instead of the client's request (same key,
// version and correlation id).
func (e *Exchange) Replace(req kmsg.Request) {
	e.req, e.replaced = req, true
}

// ReplaceAt forwards req at another version than the client's: a field the
// client's version lacks must reach the broker (a Metadata v0–3 cannot say
// "do not create"). The broker's answer, at that version, is decoded at it
// and written to the client at the client's version. Both versions must
// share the response header's form (flexible or not).
func (e *Exchange) ReplaceAt(req kmsg.Request, version int16) {
	e.req, e.replaced, e.sentAs, e.upgraded = req, true, version, version != e.Version
}

// SentVersion is the version the request goes to the broker at.
func (e *Exchange) SentVersion() int16 {
	if e.upgraded {
		return e.sentAs
	}
	return e.Version
}

// AnsweredAt tells a response exchange that the broker answered at
// version (the request was sent with ReplaceAt).
func (e *Exchange) AnsweredAt(version int16) {
	e.sentAs, e.upgraded = version, version != e.Version
}

// After asks for fn to run on the broker's response to this request. The
// response is then decoded (and re-encoded) even if no response stage
// wants its key. A later call replaces an earlier one.
func (e *Exchange) After(fn AfterResponse) { e.after = fn }

// AfterFunc is what After registered, nil if nothing; the session keeps
// it with the request in flight.
func (e *Exchange) AfterFunc() AfterResponse { return e.after }

// Frame is the request frame to forward: the client's bytes, or the
// re-encoded request after Replace. nil means the request was not read
// whole and is spliced through.
func (e *Exchange) Frame() []byte {
	if !e.replaced {
		return e.frame
	}
	var clientID *string
	if h, err := parseClientID(e.frame[4:]); err == nil {
		clientID = h
	}
	f := kmsg.NewRequestFormatter()
	if clientID != nil {
		f = kmsg.NewRequestFormatter(kmsg.FormatterClientID(*clientID))
	}
	e.req.SetVersion(e.SentVersion())
	return f.AppendRequest(nil, e.req, e.CorrelationID)
}
