// Package proxy relays one client connection to one broker connection:
// two pumps (requests up, responses down) joined by a bounded in-flight
// FIFO. Only frames that need a rewrite are decoded; everything else is
// streamed with bounded buffers.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/rewrite"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// Metrics observes the traffic of one broker's connections.
type Metrics interface {
	Request(key, version int16, bytes int)
	Response(bytes int)
}

type nopMetrics struct{}

func (nopMetrics) Request(int16, int16, int) {}
func (nopMetrics) Response(int)              {}

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
	// Forbidden API keys close the connection when requested.
	Forbidden     map[int16]bool
	Acks0Disabled bool
	Mapper        rewrite.Mapper
	Buffers       *wire.BufferPool
	// Reauthenticate, if set, renews the upstream SASL session (KIP-368)
	// over the session's own pipeline and returns the next lifetime.
	Reauthenticate func(ctx context.Context, rt upstream.RoundTripper) (time.Duration, error)
	// MinSessionLifetime: a broker session shorter than this closes the
	// connection instead of being renewed.
	MinSessionLifetime time.Duration
}

// Session is one proxied client connection.
type Session struct {
	opts     Options
	client   net.Conn
	up       *upstream.Conn
	log      *slog.Logger
	metrics  Metrics
	clientR  *bufio.Reader
	upR      *bufio.Reader
	queue    *fifo
	draining atomic.Bool
	closeMu  sync.Once

	done chan struct{}

	// writeMu is held while a request is queued and written upstream, so
	// that re-authentication can hold client requests and send its own.
	writeMu sync.Mutex
	corr    int32 // correlation ids of the proxy's own requests

	endMu     sync.Mutex
	endReason error // why the proxy ended an otherwise healthy session
}

// New prepares a session between an accepted client and a dialled broker.
func New(client net.Conn, up *upstream.Conn, opts Options, log *slog.Logger, m Metrics) *Session {
	if m == nil {
		m = nopMetrics{}
	}
	return &Session{
		opts:    opts,
		client:  client,
		up:      up,
		log:     log,
		metrics: m,
		clientR: bufio.NewReaderSize(client, opts.RequestBufferSize),
		upR:     bufio.NewReaderSize(up, opts.ResponseBufferSize),
		queue:   newFIFO(opts.MaxOpenRequests),
		done:    make(chan struct{}),
	}
}

// Drain stops reading new requests; responses to requests already sent
// are still delivered, then Run returns.
func (s *Session) Drain() {
	s.draining.Store(true)
	_ = s.client.SetReadDeadline(time.Now())
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
		close(s.done)
		_ = s.client.Close()
		_ = s.up.Close()
	})
}

// Run relays until the client or the broker closes, an error occurs or
// the session is drained. It returns nil for an orderly end.
func (s *Session) Run() error {
	stopReauth := s.scheduleReauth(s.up.SessionLifetime)
	defer stopReauth()
	defer s.Close() // first: wakes a renewal waiting on a reply

	respDone := make(chan error, 1)
	var brokerFailedFirst atomic.Bool
	go func() {
		err := s.pumpResponses()
		if err != nil && !s.isClosed() {
			brokerFailedFirst.Store(true)
			s.Close() // unblock the request pump: nothing more can be answered
		}
		respDone <- err
	}()

	reqErr := s.pumpRequests()
	s.queue.close()
	if reqErr != nil {
		// A bad request ends the connection now: nothing more is owed.
		s.Close()
		respErr := <-respDone
		if brokerFailedFirst.Load() {
			return respErr
		}
		return reqErr
	}
	// The client is done (or we drain): tell the broker, deliver what is
	// in flight, then read until the broker closes, so that closing never
	// resets a connection holding unread data (which would discard
	// acks=0 records still in the broker's receive queue).
	if cw, ok := s.up.Conn.(interface{ CloseWrite() error }); ok && !s.draining.Load() {
		_ = cw.CloseWrite()
	}
	respErr := <-respDone
	if respErr == nil && !s.draining.Load() {
		_ = s.up.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, s.upR)
	}
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

// pumpRequests reads client frames and forwards them upstream.
func (s *Session) pumpRequests() error {
	bufp := s.opts.Buffers.Get()
	defer s.opts.Buffers.Put(bufp)
	buf := *bufp
	first := true
	for {
		prefix, err := s.clientR.Peek(4)
		if err != nil {
			if s.draining.Load() && isTimeout(err) {
				return nil
			}
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
		head, err := s.clientR.Peek(12)
		if err != nil {
			return fmt.Errorf("read request header: %w", err)
		}
		h := wire.ParseRequestHeader(head[4:])
		total := 4 + size
		if s.opts.Forbidden[h.Key] {
			return fmt.Errorf("forbidden api key %d (%s) requested", h.Key, keyName(h.Key))
		}
		if local, err := s.checkVersion(h); err != nil {
			return err
		} else if local != nil {
			if _, err := s.clientR.Discard(total); err != nil {
				return fmt.Errorf("read request: %w", err)
			}
			if !s.queue.push(inflight{corr: h.CorrelationID, key: h.Key, version: h.Version, local: local}) {
				return nil
			}
			continue
		}
		expectResponse := true
		if h.Key == 0 {
			acks, err := s.peekAcks(total, h.Version)
			if err != nil {
				return fmt.Errorf("produce v%d: %w", h.Version, err)
			}
			if acks == 0 {
				if s.opts.Acks0Disabled {
					return errors.New("produce with acks=0 received but acks=0 is disabled (--producer-acks-0-disabled)")
				}
				expectResponse = false // the broker sends nothing back
			}
		}
		s.writeMu.Lock()
		if expectResponse && !s.queue.push(inflight{corr: h.CorrelationID, key: h.Key, version: h.Version}) {
			s.writeMu.Unlock()
			return nil
		}
		if s.opts.WriteTimeout > 0 {
			_ = s.up.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		}
		err = forward(s.up.Conn, s.clientR, s.client, total, buf)
		s.writeMu.Unlock()
		if err != nil {
			return fmt.Errorf("forward %s v%d request: %w", keyName(h.Key), h.Version, err)
		}
		s.metrics.Request(h.Key, h.Version, total)
	}
}

// peekAcks finds the acks of a Produce request without consuming it.
func (s *Session) peekAcks(total int, version int16) (int16, error) {
	n := min(total, s.clientR.Size())
	b, err := s.clientR.Peek(n)
	if err != nil {
		return 0, err
	}
	acks, err := produceAcks(b[4:], version)
	if errors.Is(err, errShortHeader) && n < total {
		return 0, fmt.Errorf("%w: client id and transactional id exceed %d bytes; raise --proxy-request-buffer-size", err, n)
	}
	return acks, err
}

// pumpResponses delivers responses to the client in request order.
func (s *Session) pumpResponses() error {
	bufp := s.opts.Buffers.Get()
	defer s.opts.Buffers.Put(bufp)
	buf := *bufp
	for {
		e, ok := s.queue.front()
		if !ok {
			return nil
		}
		if e.local != nil {
			if _, err := s.client.Write(e.local); err != nil {
				return fmt.Errorf("write response: %w", err)
			}
		} else if err := s.relayResponse(e, buf); err != nil {
			return err
		}
		s.queue.pop()
	}
}

// relayResponse reads one broker response for e and passes it on.
func (s *Session) relayResponse(e inflight, buf []byte) error {
	prefix, err := s.upR.Peek(4)
	if err != nil {
		return fmt.Errorf("read %s response: %w", keyName(e.key), err)
	}
	size, err := wire.CheckSize(prefix, 4, s.opts.MaxFrameSize)
	if err != nil {
		return fmt.Errorf("%s response: %w", keyName(e.key), err)
	}
	if s.opts.ReadTimeout > 0 {
		_ = s.up.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
		defer s.up.SetReadDeadline(time.Time{})
	}
	head, err := s.upR.Peek(8)
	if err != nil {
		return fmt.Errorf("read %s response: %w", keyName(e.key), err)
	}
	if corr := int32(uint32(head[4])<<24 | uint32(head[5])<<16 | uint32(head[6])<<8 | uint32(head[7])); corr != e.corr {
		return fmt.Errorf("broker answered correlation id %d but the oldest request in flight is %d (%s v%d); closing rather than hand the client another request's answer", corr, e.corr, keyName(e.key), e.version)
	}
	total := 4 + size
	if e.reply == nil && !rewrite.Needed(e.key, e.version) {
		if err := forward(s.client, s.upR, s.up.Conn, total, buf); err != nil {
			return fmt.Errorf("relay %s response: %w", keyName(e.key), err)
		}
		s.metrics.Response(total)
		return nil
	}
	frame := make([]byte, total)
	if _, err := io.ReadFull(s.upR, frame); err != nil {
		return fmt.Errorf("read %s response: %w", keyName(e.key), err)
	}
	headerLen := 8
	if flexible, _ := wire.ResponseFlexible(e.key, e.version); flexible {
		if headerLen, err = skipTags(frame, 8); err != nil {
			return fmt.Errorf("%s response header: %w", keyName(e.key), err)
		}
	}
	if e.reply != nil {
		e.reply <- reply{body: frame[headerLen:]} // buffered: never blocks
		return nil
	}
	body, changed, err := rewrite.Response(e.key, e.version, frame[headerLen:], s.opts.Mapper)
	if err != nil {
		return fmt.Errorf("rewrite %s v%d response: %w", keyName(e.key), e.version, err)
	}
	if changed {
		putSize(frame, headerLen-4+len(body))
		bufs := net.Buffers{frame[:headerLen], body}
		_, err = bufs.WriteTo(s.client)
		total = headerLen + len(body)
	} else {
		_, err = s.client.Write(frame)
	}
	if err != nil {
		return fmt.Errorf("write %s response: %w", keyName(e.key), err)
	}
	s.metrics.Response(total)
	return nil
}

// forward copies one frame of n bytes (size prefix included) from r, whose
// buffer holds its first bytes, to dst; raw is r's underlying connection,
// read directly once the buffer is empty so large bodies bypass it.
func forward(dst io.Writer, r *bufio.Reader, raw io.Reader, n int, buf []byte) error {
	if n <= r.Size() {
		b, err := r.Peek(n)
		if err != nil {
			return err
		}
		if _, err := dst.Write(b); err != nil {
			return err
		}
		_, err = r.Discard(n)
		return err
	}
	b, _ := r.Peek(r.Buffered())
	if _, err := dst.Write(b); err != nil {
		return err
	}
	k, _ := r.Discard(len(b))
	return wire.CopyN(dst, raw, int64(n-k), buf)
}

func putSize(frame []byte, n int) {
	frame[0], frame[1], frame[2], frame[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
