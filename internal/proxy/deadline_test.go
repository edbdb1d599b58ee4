package proxy

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// slowRead reads n bytes from r in small pieces with pauses, so the whole
// transfer takes several times the proxy's timeouts.
func slowRead(r io.Reader, n int, piece int, pause time.Duration) ([]byte, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, piece)
	for len(out) < n {
		k, err := io.ReadFull(r, buf[:min(piece, n-len(out))])
		out = append(out, buf[:k]...)
		if err != nil {
			return out, err
		}
		time.Sleep(pause)
	}
	return out, nil
}

// TestSlowClientLargeResponseNotCut: the read timeout bounds a broker that
// stops sending, not a large response streaming to a slow client.
func TestSlowClientLargeResponseNotCut(t *testing.T) {
	for _, tcp := range []bool{true, false} {
		opts := testOptions()
		opts.ReadTimeout = 400 * time.Millisecond
		opts.MaxFrameSize = 16 << 20
		h := startSession(t, tcp, opts, 0)
		body := bytes.Repeat([]byte("0123456789abcdef"), (8<<20)/16) // 8 MiB
		go func() {
			if _, err := readFrame(h.broker); err != nil {
				return
			}
			_, _ = h.broker.Write(rawResponse(1, body))
		}()
		if _, err := h.client.Write(rawFrame(2, 1, 1, nil)); err != nil {
			t.Fatal(err)
		}
		_ = h.client.SetReadDeadline(time.Now().Add(ioTimeout))
		// ~1.3 s in total: three times the read timeout, while each
		// MiB (the splice chunk) takes ~160 ms.
		got, err := slowRead(h.client, 8+len(body), 64<<10, 10*time.Millisecond)
		if err != nil || !bytes.Equal(got[8:], body) {
			t.Fatalf("tcp=%v: response cut after %d of %d bytes: %v", tcp, len(got), 8+len(body), err)
		}
	}
}

// TestSlowProducerLargeRequestNotCut: the write timeout bounds a broker
// that stops reading, not a large request arriving slowly from a client.
func TestSlowProducerLargeRequestNotCut(t *testing.T) {
	for _, tcp := range []bool{true, false} {
		opts := testOptions()
		opts.WriteTimeout = 400 * time.Millisecond
		opts.MaxFrameSize = 16 << 20
		h := startSession(t, tcp, opts, 0)
		frame := rawFrame(2, 1, 7, bytes.Repeat([]byte{'x'}, 8<<20))
		got := make(chan []byte, 1)
		go func() {
			f, _ := readFrame(h.broker)
			got <- f
		}()
		for off := 0; off < len(frame); off += 64 << 10 { // ~1.3 s in total
			if _, err := h.client.Write(frame[off:min(off+64<<10, len(frame))]); err != nil {
				t.Fatalf("tcp=%v: write at %d: %v", tcp, off, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if f := <-got; !bytes.Equal(f, frame) {
			t.Fatalf("tcp=%v: broker got %d of %d bytes", tcp, len(f), len(frame))
		}
	}
}
