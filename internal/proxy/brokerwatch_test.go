//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// watchedSession is a session over loopback TCP with a broker watch, which
// the test closes after the session's cleanup (registered first, so run
// last).
func watchedSession(t *testing.T) *harness {
	t.Helper()
	return startSession(t, true, watchedOptions(t), 0)
}

// closedWithin reports whether the client's end sees the end of the
// stream within d, with no byte before it.
func closedWithin(t *testing.T, h *harness, d time.Duration) bool {
	t.Helper()
	_ = h.client.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := h.client.Read(b[:])
	if n > 0 {
		t.Fatalf("client received a byte %x, want none", b[0])
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true // EOF or reset
}

// A broker that closes a connection with nothing in flight (a restart,
// connections.max.idle.ms) closes the client's connection at once, as a
// direct connection would show it, after requests have passed.
func TestBrokerCloseWhileIdleClosesClient(t *testing.T) {
	h := watchedSession(t)
	for corr := int32(1); corr <= 3; corr++ {
		exchange(t, h, corr)
	}
	// Idle now: the watch must not fire on its own.
	if closedWithin(t, h, 200*time.Millisecond) {
		t.Fatal("client connection closed while the broker was still connected")
	}
	brokerLeaves(t, h)
}

// The same before any request: the session arms the watch when it starts.
func TestBrokerCloseBeforeFirstRequest(t *testing.T) {
	brokerLeaves(t, watchedSession(t))
}

// exchange relays one request and its response through h.
func exchange(t *testing.T, h *harness, corr int32) {
	t.Helper()
	req := rawFrame(2, 1, corr, []byte("list offsets"))
	if err := writeAll(h.client, req); err != nil {
		t.Fatal(err)
	}
	if f, err := readFrame(h.broker); err != nil || !bytes.Equal(f, req) {
		t.Fatalf("broker got %x, %v", f, err)
	}
	resp := rawResponse(corr, []byte("answer"))
	if err := writeAll(h.broker, resp); err != nil {
		t.Fatal(err)
	}
	if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, resp) {
		t.Fatalf("client got %x, %v", f, err)
	}
}

// brokerLeaves closes the broker's end of an idle session and expects the
// client's to close soon, and Run to say why.
func brokerLeaves(t *testing.T, h *harness) {
	t.Helper()
	_ = h.broker.Close()
	if !closedWithin(t, h, 2*time.Second) {
		t.Fatal("client connection still open 2s after the broker closed it")
	}
	if err := h.wait(); !errors.Is(err, ErrBrokerClosed) {
		t.Fatalf("Run = %v, want ErrBrokerClosed", err)
	}
}

// A broker that answers and then closes (as brokers do after some errors)
// still has its answer delivered: the watch ignores a session with a
// request in flight, and the responder meets the close after the answer.
func TestBrokerAnswersThenCloses(t *testing.T) {
	h := watchedSession(t)
	req := rawFrame(2, 1, 7, []byte("list offsets"))
	if err := writeAll(h.client, req); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrame(h.broker); err != nil {
		t.Fatal(err)
	}
	resp := rawResponse(7, []byte("last words"))
	if err := writeAll(h.broker, resp); err != nil {
		t.Fatal(err)
	}
	_ = h.broker.Close()
	if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, resp) {
		t.Fatalf("client got %x, %v; want the answer sent before the close", f, err)
	}
	if !closedWithin(t, h, 2*time.Second) {
		t.Fatal("client connection still open 2s after the broker closed it")
	}
}

// Without a watch (or off Linux), the client learns of the close only
// when it next sends: the behaviour the watch improves on, kept as the
// fallback.
func TestBrokerCloseUnwatched(t *testing.T) {
	h := startSession(t, true, testOptions(), 0)
	_ = h.broker.Close()
	if closedWithin(t, h, 300*time.Millisecond) {
		t.Fatal("unwatched session noticed the close without a request: is this test still needed?")
	}
	if err := writeAll(h.client, rawFrame(2, 1, 1, nil)); err != nil {
		t.Fatal(err)
	}
	_ = h.client.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadAll(h.client); err != nil && !isReset(err) {
		t.Fatalf("client: %v, want the connection closed", err)
	}
}

// Many sessions on one watch: each broker close ends only its own session.
func TestBrokerWatchManySessions(t *testing.T) {
	opts := watchedOptions(t)
	hs := make([]*harness, 20)
	for i := range hs {
		hs[i] = startSession(t, true, opts, 0)
	}
	for i := 0; i < len(hs); i += 2 {
		_ = hs[i].broker.Close()
	}
	for i, h := range hs {
		closed := closedWithin(t, h, map[bool]time.Duration{true: 2 * time.Second, false: 100 * time.Millisecond}[i%2 == 0])
		if closed != (i%2 == 0) {
			t.Fatalf("session %d: closed %v, want %v", i, closed, i%2 == 0)
		}
	}
	// The survivors still relay.
	for i := 1; i < len(hs); i += 2 {
		exchange(t, hs[i], 1)
	}
}

// Close stops the watcher's goroutine (TestMain's leak check) and is
// idempotent; a watch closed before use never starts one.
func TestBrokerWatchClose(t *testing.T) {
	w := NewBrokerWatch()
	w.Close()
	w.Close()
	opts := testOptions()
	opts.BrokerWatch = w
	h := startSession(t, true, opts, 0)
	_ = h.broker.Close()
	if closedWithin(t, h, 200*time.Millisecond) {
		t.Fatal("a closed watch still watches")
	}
}
