// Package proxy relays one client connection to one broker connection:
// two pumps (requests up, responses down) joined by a bounded in-flight
// FIFO. The response pump runs only while requests are in flight, and
// read buffers are held only while a frame passes, so an idle connection
// costs one goroutine and no buffer. Only frames that need a rewrite are
// decoded; everything else is streamed with bounded buffers.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// Metrics observes the traffic of one broker's connections.
type Metrics interface {
	Request(key, version int16, bytes int)
	Response(bytes int)
	// Answered observes a request's time from its read from the client
	// to its response written back.
	Answered(key int16, took time.Duration)
}

type nopMetrics struct{}

func (nopMetrics) Request(int16, int16, int)     {}
func (nopMetrics) Response(int)                  {}
func (nopMetrics) Answered(int16, time.Duration) {}

// Options are the per-connection settings, shared by every session of a
// server.
type Options struct {
	MaxFrameSize       int
	MaxOpenRequests    int
	RequestBufferSize  int
	ResponseBufferSize int
	// ReadTimeout bounds reading the rest of a response once it started
	// arriving; waiting for a response to start is not bounded, since
	// JoinGroup or a long Fetch may legitimately take minutes.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to the broker.
	WriteTimeout time.Duration
	// Stages are the request path's per-key stages (address rewriting,
	// the ApiVersions clamp, policy); a request or response no stage
	// wants is spliced through undecoded.
	Stages  *pipeline.Chain
	Buffers *wire.BufferPool
	// RequestReaders and ResponseReaders lend the sessions their read
	// buffers (RequestBufferSize and ResponseBufferSize bytes) while a
	// frame passes; nil gives each session its own pool.
	RequestReaders, ResponseReaders *ReaderPool
	// Reauthenticate, if set, renews the upstream SASL session (KIP-368)
	// over the session's own pipeline and returns the next lifetime.
	Reauthenticate func(ctx context.Context, rt upstream.RoundTripper) (time.Duration, error)
	// FirstResponseHint, if set, is added to the error when the broker
	// closes the connection (or sends a non-Kafka frame) instead of
	// answering the session's first request: with plaintext upstream
	// connections, that the broker may require TLS.
	FirstResponseHint string
	// MinSessionLifetime is the shortest interval between two renewals of
	// one connection's broker session, unless the session is shorter:
	// then it is renewed at 85–90% of its lifetime (see renewalDelay).
	MinSessionLifetime time.Duration
	// BrokerWatch, if set, ends a session at once when its broker closes
	// the connection while no request is in flight.
	BrokerWatch *BrokerWatch
	// ResponderLinger is how long a busy session's responder waits for
	// the next request after the queue empties (see linger); 0 means
	// 250 ms, negative never.
	ResponderLinger time.Duration
}

// ErrBrokerClosed ends a session whose broker closed the connection while
// no request was in flight (a broker restart, or its
// connections.max.idle.ms): the client sees the close, as it would on a
// direct connection, and reconnects.
var ErrBrokerClosed = errors.New("broker closed the connection while no request was in flight")

// Session is one proxied client connection.
type Session struct {
	opts    Options
	peer    *pipeline.Client
	client  net.Conn // peer.Conn
	up      *upstream.Conn
	log     *slog.Logger
	metrics Metrics
	queue   *fifo
	closeMu sync.Once

	// The two read buffers are held only while a frame passes: an idle
	// session waits on the client reading into pre, a few bytes inside
	// the session, and has no responder (see fifo), so it holds neither.
	upSrc upstreamReader // what upR reads: deadlines while a response streams
	write deadline       // the broker connection's write deadline; under writeMu
	// extendReadFn and extendWriteFn are extendRead and extendWrite,
	// bound once so the hot path passes them without allocating.
	extendReadFn, extendWriteFn func()
	clientR                     *bufio.Reader // request pump's; nil between frames
	pre                         prefixReader  // where clientR starts reading a frame
	upR                         *bufio.Reader // the responder's; nil while the queue is empty
	reqBufs                     *ReaderPool   // RequestBufferSize readers
	respBufs                    *ReaderPool   // ResponseBufferSize readers
	// respond is s.respondLoop, made once: a go statement of a method
	// value would allocate a closure for every burst of requests.
	respond func()
	// idleSince is when the queue last emptied; the responder's (they
	// follow each other under the queue's lock).
	idleSince  time.Time
	respFailed atomic.Bool // the responder failed while the session was open
	answered   atomic.Bool // the broker has answered a request of this session
	clientGone atomic.Bool // the client hung up with responses in flight
	// watch is the broker socket's registration with opts.BrokerWatch;
	// brokerClosed is set when that ended the session.
	watch        brokerWatchState
	brokerClosed atomic.Bool

	// readMu orders Drain against the request pump: a drain interrupts the
	// pump (by a read deadline) only while it waits for a frame's first
	// bytes, never inside a frame, so a request half read is finished,
	// forwarded whole and answered.
	readMu   sync.Mutex
	draining atomic.Bool // set under readMu; read anywhere
	idle     bool        // the request pump waits for a new frame

	done chan struct{}
	// stopping is cancelled once the session sends no more requests (the
	// request pump ended, or Close), so a renewal in progress, which holds
	// writeMu, gives up instead of delaying the end of the session.
	stopping     context.Context
	stopRequests context.CancelFunc

	// writeMu is held while a request is queued and written upstream, so
	// that re-authentication can hold client requests and send its own.
	writeMu sync.Mutex
	corr    int32 // correlation ids of the proxy's own requests

	endMu     sync.Mutex
	endReason error // why the proxy ended an otherwise healthy session
}

// New prepares a session between an admitted client and a dialled broker.
func New(peer *pipeline.Client, up *upstream.Conn, opts Options, log *slog.Logger, m Metrics) *Session {
	client := peer.Conn
	if m == nil {
		m = nopMetrics{}
	}
	opts.RequestBufferSize = max(opts.RequestBufferSize, prefixSize)
	if opts.RequestReaders == nil || opts.RequestReaders.size < prefixSize {
		// A reader smaller than the prefix would leave prefix bytes
		// behind when a body is copied from the socket.
		opts.RequestReaders = NewReaderPool(opts.RequestBufferSize)
	}
	if opts.ResponseReaders == nil {
		opts.ResponseReaders = NewReaderPool(opts.ResponseBufferSize)
	}
	stopping, stopRequests := context.WithCancel(context.Background())
	s := &Session{
		opts:         opts,
		peer:         peer,
		client:       client,
		up:           up,
		log:          log,
		metrics:      m,
		pre:          prefixReader{conn: client, ready: newReadiness(client)},
		reqBufs:      opts.RequestReaders,
		respBufs:     opts.ResponseReaders,
		queue:        newFIFO(opts.MaxOpenRequests),
		done:         make(chan struct{}),
		stopping:     stopping,
		stopRequests: stopRequests,
	}
	s.upSrc = newUpstreamReader(up.Conn, opts.ReadTimeout)
	s.write = deadline{set: up.Conn.SetWriteDeadline}
	s.extendReadFn, s.extendWriteFn = s.extendRead, s.extendWrite
	s.respond = s.respondLoop
	s.queue.onIdle = s.responsesIdle
	if s.opts.ResponderLinger == 0 {
		s.opts.ResponderLinger = responderLinger
	}
	if s.opts.ResponderLinger > 0 {
		s.queue.linger, s.queue.wake = s.linger, s.lingerWake
	}
	if opts.BrokerWatch != nil {
		s.watch.init(up.Conn)
	}
	return s
}

func (s *Session) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Close ends the session at once.
func (s *Session) Close() {
	s.closeMu.Do(func() {
		s.queue.close()
		s.stopRequests()
		close(s.done)
		_ = s.client.Close()
		if s.opts.BrokerWatch != nil {
			s.opts.BrokerWatch.forget(s)
		}
		_ = s.up.Close()
	})
}

// Run relays until the client or the broker closes, an error occurs or
// the session is drained. It returns nil for an orderly end. Requests are
// read on the calling goroutine; responses are delivered by a responder
// goroutine that runs only while requests are in flight (see fifo).
func (s *Session) Run() error {
	stopReauth := s.scheduleReauth(s.up.SessionLifetime)
	defer stopReauth()
	defer s.Close() // first: wakes a renewal waiting on a reply

	s.armBrokerWatch()
	reqErr := s.pumpRequests()
	if s.brokerClosed.Load() {
		// The queue was closed while idle, so no responder runs or starts.
		s.Close()
		_ = s.queue.wait()
		return ErrBrokerClosed
	}
	// Had responses already failed, the request pump ended only because
	// of that (a closed socket, or a closed queue while it waited for a
	// slot, which it reports as nil): the response side's error is why.
	respFailedFirst := s.respFailed.Load()
	if !s.draining.Load() && !respFailedFirst && reqErr == nil {
		// Nobody reads what is still in flight: a response that has not
		// started within the read timeout is not worth holding the
		// broker connection for (the responder may already be waiting
		// under a long-poll's longer bound). Set before the queue
		// closes, which wakes a lingering responder with a deadline of
		// now that this must not overwrite.
		s.clientGone.Store(true)
		if s.opts.ReadTimeout > 0 {
			_ = s.up.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
		}
	}
	s.queue.close()
	s.stopRequests()
	if respFailedFirst || reqErr != nil {
		// A bad request or a failed response side ends the connection
		// now: nothing more can be delivered in order.
		s.Close()
		respErr := s.queue.wait()
		if respFailedFirst {
			return respErr
		}
		return reqErr
	}
	// The client is done (or we drain): tell the broker, deliver what is
	// in flight, then read until the broker closes, so that closing never
	// resets a connection holding unread data (which would discard
	// acks=0 records still in the broker's receive queue). writeMu waits
	// for a renewal's write in progress (its next request fails: the queue
	// is closed).
	halfClosed := false
	if cw, ok := s.up.Conn.(interface{ CloseWrite() error }); ok && !s.draining.Load() {
		s.writeMu.Lock()
		halfClosed = cw.CloseWrite() == nil
		s.writeMu.Unlock()
	}
	// The queue is closed, so no responder starts after this returns.
	respErr := s.queue.wait()
	if respErr == nil && halfClosed {
		// Without a half-close the broker has no reason to close, so
		// there is nothing to wait for.
		_ = s.up.SetReadDeadline(time.Now().Add(2 * time.Second))
		var rest io.Reader = s.up
		if s.upR != nil {
			rest = s.upR // bytes the broker sent beyond the last response
		}
		_, _ = io.Copy(io.Discard, rest)
	}
	s.dropResponseReader()
	if err := s.ended(); err != nil {
		return err
	}
	if !s.draining.Load() {
		// The client hung up first: responses it abandoned (a Fetch in
		// flight, say) are not an error of the proxy or the broker.
		return nil
	}
	return respErr
}

// enqueue queues e and starts a responder if none runs; false if the
// queue is closed.
func (s *Session) enqueue(e inflight) bool {
	ok, start := s.queue.push(e)
	if start {
		go s.respond()
	}
	return ok
}

// pumpRequests reads client frames and forwards them upstream.
func (s *Session) pumpRequests() error {
	defer s.releaseRequestReader()
	first := true
	for {
		if !s.awaitRequest() {
			return nil
		}
		if s.clientR != nil && s.clientR.Buffered() == 0 {
			s.releaseRequestReader()
		}
		if s.clientR == nil {
			// Wait for the next frame without a buffer: an idle
			// client costs only pre.
			if err := s.pre.fill(); err != nil {
				if s.draining.Load() || errors.Is(err, io.EOF) {
					return nil // between frames: nothing is owed
				}
				return fmt.Errorf("read request: %w", err)
			}
			s.clientR = s.reqBufs.get()
			s.clientR.Reset(&s.pre)
		}
		prefix, err := s.clientR.Peek(4)
		if err != nil && s.draining.Load() {
			return nil // interrupted between frames: nothing is owed
		}
		if err != nil {
			if errors.Is(err, io.EOF) && s.clientR.Buffered() == 0 {
				return nil
			}
			return fmt.Errorf("read request: %w", err)
		}
		if first {
			first = false
			if p := wire.ForeignProtocol(prefix); p != "" {
				return fmt.Errorf("client speaks %s", p)
			}
		}
		size, err := wire.CheckSize(prefix, wire.RequestHeaderMin, s.opts.MaxFrameSize)
		if err != nil {
			return fmt.Errorf("request: %w", err)
		}
		// Read as much of the frame as the buffer holds before anything
		// goes upstream, so that a drain can still drop a request the
		// client stalls in (nothing of it forwarded, nothing owed).
		head, err := s.clientR.Peek(min(4+size, s.clientR.Size()))
		if err != nil && s.draining.Load() {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		h := wire.ParseRequestHeader(head[4:])
		read := time.Now()
		total := 4 + size
		var frame []byte                 // the whole request, when a stage read or replaced it
		var after pipeline.AfterResponse // what a stage wants done to the response
		sent := h.Version                // the version the broker sees (a stage may upgrade it)
		if route := s.opts.Stages.Route(h.Key, h.Version); route.Request() {
			var local []byte
			if frame, local, after, sent, err = s.runRequestStages(route, h, head, total); err != nil {
				return err
			}
			if local != nil {
				if !s.enqueue(inflight{corr: h.CorrelationID, key: h.Key, version: h.Version, local: local, read: read}) || s.draining.Load() {
					return nil // closed, or a stage ended the session after this answer
				}
				continue
			}
		}
		if frame != nil {
			// Read whole (and maybe re-encoded by a stage): head may be
			// stale, and the size is the new frame's.
			head, total = frame, len(frame)
		}
		expectResponse := true
		wait := wire.RequestWait(head[4:], h.Key, h.Version)
		if h.Key == kmsg.Produce.Int16() {
			acks, err := peekAcks(head, total, h.Version)
			if err != nil {
				return fmt.Errorf("produce v%d: %w", h.Version, err)
			}
			if acks == 0 {
				expectResponse = false // the broker sends nothing back
			}
		}
		if s.requestStarted() {
			return nil // a drain came first; this request is left unsent
		}
		s.writeMu.Lock()
		if expectResponse && !s.queue.waitRoom() {
			s.writeMu.Unlock()
			return nil
		}
		if frame != nil {
			s.extendWrite()
			_, err = s.up.Conn.Write(frame)
		} else {
			err = forward(s.up.Conn, s.clientR, s.client, total, s.opts.Buffers, s.extendWriteFn)
		}
		if err == nil && expectResponse {
			// Queued after the write (room was reserved above): the
			// responder reads the broker only once this entry is at
			// the front, so the order of the two does not matter.
			s.enqueue(inflight{corr: h.CorrelationID, key: h.Key, version: h.Version, after: after, wait: wait, sent: sent, upgraded: sent != h.Version, read: read})
		}
		s.writeMu.Unlock()
		if err != nil {
			return fmt.Errorf("forward %s v%d request: %w", keyName(h.Key), h.Version, err)
		}
		s.metrics.Request(h.Key, h.Version, total)
	}
}

// peekAcks finds the acks of a Produce request in head, the frame's first
// bytes (all of it that the request buffer holds), without consuming it.
func peekAcks(head []byte, total int, version int16) (int16, error) {
	acks, err := wire.ProduceAcks(head[4:], version)
	if errors.Is(err, wire.ErrShortHeader) && len(head) < total {
		return 0, fmt.Errorf("%w: client id and transactional id exceed %d bytes; raise --proxy-request-buffer-size", err, len(head))
	}
	return acks, err
}
