package proxy

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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

// A broker that takes a request and never answers: the session ends after
// the read timeout (plus the request's own wait), with a reason, instead
// of holding the connection open; and a long-poll Fetch answered within
// its max wait is not cut by that bound.
func TestSilentBrokerBounded(t *testing.T) {
	opts := testOptions()
	opts.ReadTimeout = 200 * time.Millisecond
	h := startSession(t, false, opts, 0)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.MaxWaitMillis = 12, 600
	go func() {
		f, err := readFrame(h.broker) // the Fetch: answered after 500 ms
		if err != nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
		p, _ := parseRequest(f)
		_ = writeAll(h.broker, rawResponse(p.CorrelationID, []byte("fetched")))
		_, _ = readFrame(h.broker) // the next request: never answered
	}()
	if err := writeAll(h.client, requestFrame(fetch, 1, nil)); err != nil {
		t.Fatal(err)
	}
	if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, rawResponse(1, []byte("fetched"))) {
		t.Fatalf("long-poll fetch within its max wait: %x, %v", f, err)
	}
	start := time.Now()
	if err := writeAll(h.client, rawFrame(3, 1, 2, nil)); err != nil { // Metadata: no wait of its own
		t.Fatal(err)
	}
	err := h.wait()
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Fatalf("silent broker: Run = %v after %v, want an error after about the 200ms read timeout", err, took)
	}
}

// A client that hangs up while its request waits on a silent broker ends
// the session within the read timeout, even under a long-poll's bound.
func TestClientGoneSilentBroker(t *testing.T) {
	opts := testOptions()
	opts.ReadTimeout = 200 * time.Millisecond
	h := startSession(t, false, opts, 0)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.MaxWaitMillis = 12, 60_000
	go func() { _, _ = readFrame(h.broker) }()
	if err := writeAll(h.client, requestFrame(fetch, 1, nil)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	_ = h.client.Close()
	_ = h.wait()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("session held %v after its client left", took)
	}
}
