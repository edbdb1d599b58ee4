package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// respondLoop is the responder: it delivers responses to the client in
// request order while any are queued. enqueue starts it when a request
// finds none running; it stops when the queue is empty (see fifo), so an
// idle session has no goroutine and no buffer on the response side.
func (s *Session) respondLoop() {
	e, ok := s.queue.next(false)
	for ok {
		if err := s.deliver(e); err != nil {
			if !s.isClosed() {
				// Set before Close, which ends the request pump: Run
				// then knows this error is the cause.
				s.respFailed.Store(true)
			}
			s.Close() // unblock the request pump: nothing more can be answered
			s.queue.fail(err)
			return
		}
		e, ok = s.queue.next(true)
	}
}

// deliver passes on the response for e.
func (s *Session) deliver(e inflight) error {
	if e.local != nil {
		if _, err := s.client.Write(e.local); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		s.metrics.Answered(e.key, time.Since(e.read))
		return nil
	}
	s.responseReader()
	err := s.relayResponse(e)
	if err == nil {
		s.answered.Store(true)
		if e.reply == nil {
			s.metrics.Answered(e.key, time.Since(e.read))
		}
	} else if s.opts.FirstResponseHint != "" && !s.answered.Load() && (errors.Is(err, io.EOF) || errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrNegativeSize)) {
		err = fmt.Errorf("%w; %s", err, s.opts.FirstResponseHint)
	}
	return err
}

// relayResponse reads one broker response for e and passes it on.
func (s *Session) relayResponse(e inflight) error {
	if s.upR.Buffered() < 4 {
		if s.clientGone.Load() {
			s.upSrc.forget() // Run set a shorter one
			s.upSrc.await(0) // nobody waits for it any more
		} else {
			s.upSrc.await(e.wait)
			if s.clientGone.Load() {
				// Run's shorter deadline may have come before ours.
				s.upSrc.forget()
				s.upSrc.await(0)
			}
		}
	}
	prefix, err := s.upR.Peek(4)
	if err != nil {
		return fmt.Errorf("read %s response: %w", keyName(e.key), err)
	}
	size, err := wire.CheckSize(prefix, 4, s.opts.MaxFrameSize)
	if err != nil {
		return fmt.Errorf("%s response: %w", keyName(e.key), err)
	}
	// The response has started: from here on, a broker that stops
	// sending for the read timeout fails it (see deadline.go).
	s.upSrc.arm()
	defer s.upSrc.disarm()
	head, err := s.upR.Peek(8)
	if err != nil {
		return fmt.Errorf("read %s response: %w", keyName(e.key), err)
	}
	if corr := int32(uint32(head[4])<<24 | uint32(head[5])<<16 | uint32(head[6])<<8 | uint32(head[7])); corr != e.corr {
		return fmt.Errorf("broker answered correlation id %d but the oldest request in flight is %d (%s v%d); closing rather than hand the client another request's answer", corr, e.corr, keyName(e.key), e.version)
	}
	total := 4 + size
	var route pipeline.Route
	if e.reply == nil {
		route = s.opts.Stages.Route(e.key, e.version)
		if st := s.opts.Stages.Streamer(route); st != nil && e.after == nil && !e.upgraded {
			return s.relayStreamed(st, e, total)
		}
	}
	if e.reply == nil && !route.Response() && e.after == nil && !e.upgraded {
		if err := forward(s.client, s.upR, s.up.Conn, total, s.opts.Buffers, s.extendReadFn); err != nil {
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
	if flexible, _ := wire.ResponseFlexible(e.key, e.wireVersion()); flexible {
		if headerLen, err = wire.SkipTags(frame, 8); err != nil {
			return fmt.Errorf("%s response header: %w", keyName(e.key), err)
		}
	}
	if e.reply != nil {
		e.reply <- reply{body: frame[headerLen:]} // buffered: never blocks
		return nil
	}
	body, changed, err := s.runResponseStages(route, e, frame[headerLen:])
	if err != nil {
		return fmt.Errorf("%s v%d response: %w", keyName(e.key), e.version, err)
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
// read directly once the buffer is empty so large bodies bypass it. A copy
// buffer is taken from pool only for such bodies, so idle sessions hold
// none.
// progress (may be nil) is called before each write and each chunk copied,
// to extend the deadline of the broker side.
func forward(dst io.Writer, r *bufio.Reader, raw io.Reader, n int, pool *wire.BufferPool, progress func()) error {
	if n <= r.Size() {
		b, err := r.Peek(n)
		if err != nil {
			return err
		}
		if progress != nil {
			progress()
		}
		if _, err := dst.Write(b); err != nil {
			return err
		}
		_, err = r.Discard(n)
		return err
	}
	b, _ := r.Peek(r.Buffered())
	if progress != nil {
		progress()
	}
	if _, err := dst.Write(b); err != nil {
		return err
	}
	k, _ := r.Discard(len(b))
	bufp := pool.Get()
	defer pool.Put(bufp)
	return wire.CopyNProgress(dst, raw, int64(n-k), *bufp, progress)
}

func putSize(frame []byte, n int) {
	frame[0], frame[1], frame[2], frame[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

func keyName(key int16) string { return kmsg.NameForKey(key) }
