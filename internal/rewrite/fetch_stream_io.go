package rewrite

import (
	"bufio"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kbin"

	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// fixed reads k (<= cap(out)) bytes of fixed-size fields into out.
func (s *fetchStream) fixed(k int, what string) error {
	if k > s.rem {
		return s.malformed(what, fmt.Sprintf("%d bytes, %d left", k, s.rem))
	}
	if err := s.ensure(k); err != nil {
		return err
	}
	at := len(s.out)
	s.out = s.out[:at+k]
	if _, err := io.ReadFull(s.r, s.out[at:]); err != nil {
		return s.readErr(what, err)
	}
	s.rem -= k
	return nil
}

// uvarint reads one uvarint into out, never past the body. A fifth byte
// above 0x0f (more than 32 bits) is malformed, as in kmsg; Kafka's Java
// reader would silently drop those bits, so accepting it would let the
// proxy and a client read different values.
func (s *fetchStream) uvarint(what string) (uint32, error) {
	if err := s.ensure(5); err != nil {
		return 0, err
	}
	var v uint32
	for i := range 5 {
		if s.rem == 0 {
			return 0, s.malformed(what, "uvarint runs past the body")
		}
		c, err := s.r.ReadByte()
		if err != nil {
			return 0, s.readErr(what, err)
		}
		s.rem--
		s.out = append(s.out, c)
		if i == 4 && c > 0x0f {
			return 0, s.malformed(what, "uvarint over 32 bits")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
	}
	return v, nil
}

// copyN passes k body bytes through: small values via out, large ones in
// chunks, first from r's buffer, then from raw.
func (s *fetchStream) copyN(k uint64, what string) error {
	if k > uint64(s.rem) {
		return s.malformed(what, fmt.Sprintf("%d bytes, %d left", k, s.rem))
	}
	n := int(k)
	if n <= cap(s.out)/smallCopyDiv {
		return s.fixed(n, what)
	}
	s.rem -= n
	// What r already holds of the value joins the pending fields when it
	// fits, so they leave in one write, not two.
	if b := min(n, s.r.Buffered()); b > 0 && b <= cap(s.out)-len(s.out) {
		p, _ := s.r.Peek(b)
		s.out = append(s.out, p...)
		_, _ = s.r.Discard(b)
		n -= b
	}
	if n == 0 {
		return nil // all in out: the next fields may join the same write
	}
	if err := s.flush(); err != nil {
		return err
	}
	return relayRest(s.w, s.r, s.raw, n, s.copyBuf, s.progress, what)
}

// relayRest passes the next n bytes of r through to w: what r has
// buffered, then the rest straight from raw (r's underlying reader; nil to
// read through r), so wire.CopyN can splice TCP to TCP.
func relayRest(w io.Writer, r *bufio.Reader, raw io.Reader, n int, buf []byte, progress func(), what string) error {
	for n > 0 && r.Buffered() > 0 {
		b, _ := r.Peek(min(n, r.Buffered()))
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		_, _ = r.Discard(len(b))
		n -= len(b)
	}
	if n == 0 {
		return nil
	}
	src := raw
	if src == nil {
		src = r
	}
	if err := wire.CopyNProgress(w, src, int64(n), buf, progress); err != nil {
		return fmt.Errorf("copy %s: %w", what, err)
	}
	return nil
}

// ensure makes room for k bytes in out.
func (s *fetchStream) ensure(k int) error {
	if cap(s.out)-len(s.out) < k {
		return s.flush()
	}
	return nil
}

func (s *fetchStream) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.w.Write(s.out)
	s.out = s.out[:0]
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// write queues b behind out, or writes it directly if it does not fit.
func (s *fetchStream) write(b []byte) error {
	if len(b) <= cap(s.out)-len(s.out) {
		s.out = append(s.out, b...)
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (s *fetchStream) appendUvarint(v uint32) error {
	if err := s.ensure(5); err != nil {
		return err
	}
	s.out = kbin.AppendUvarint(s.out, v)
	return nil
}

func (s *fetchStream) appendZeros(k int) error {
	for k > 0 {
		if len(s.out) == cap(s.out) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		c := min(k, cap(s.out)-len(s.out))
		at := len(s.out)
		s.out = s.out[:at+c]
		clear(s.out[at:])
		k -= c
	}
	return nil
}

func (s *fetchStream) malformed(what, detail string) error {
	return fmt.Errorf("%w: %s at byte %d of %d: %s", ErrMalformedFetch, what, s.n-s.rem, s.n, detail)
}

func (s *fetchStream) readErr(what string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %s at byte %d of %d: %w", what, s.n-s.rem, s.n, err)
}
