package proxy

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// responders counts the goroutines running a session's responder.
func responders() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "proxy.(*Session).respondLoop(")
}

// idleResponseSide waits until the session has no responder, and reports
// whether it still holds a response buffer.
func idleResponseSide(t *testing.T, h *harness) (holdsBuffer bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for responders() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("a responder still runs with nothing in flight")
		}
		time.Sleep(time.Millisecond)
	}
	q := h.sess.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.responding || q.n != 0 {
		t.Fatalf("responding %v with %d in flight after the responder stopped", q.responding, q.n)
	}
	return h.sess.upR != nil
}

// Between bursts of requests a session has no responder goroutine and no
// response buffer; the next request starts a new one, also when the
// previous burst overlapped several requests.
func TestIdleSessionHasNoResponder(t *testing.T) {
	// TCP only: on a pipe the client's writes would wait for the broker's
	// reads.
	h := startSession(t, true, testOptions(), 0)
	for round := range 3 {
		n := round + 1 // 1, then 2, then 3 requests in flight
		for i := range n {
			if err := writeAll(h.client, rawFrame(2, 5, int32(10*round+i), []byte{byte(i)})); err != nil {
				t.Fatal(err)
			}
		}
		for range n {
			if _, err := readFrame(h.broker); err != nil {
				t.Fatal(err)
			}
		}
		var resps []byte
		for i := range n {
			resps = append(resps, rawResponse(int32(10*round+i), []byte{byte(i)})...)
		}
		// One write: the responder reads several responses at once.
		if err := writeAll(h.broker, resps); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			f, err := readFrame(h.client)
			if err != nil || !bytes.Equal(f, rawResponse(int32(10*round+i), []byte{byte(i)})) {
				t.Fatalf("round %d response %d: %x, %v", round, i, f, err)
			}
		}
		if idleResponseSide(t, h) {
			t.Fatalf("round %d: the idle session kept its response buffer", round)
		}
	}
	h.clientLeaves(true)
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// A local response (an ApiVersions version the proxy answers itself)
// starts a responder too, and an idle one is never left behind.
func TestIdleAfterLocalResponse(t *testing.T) {
	h := startSession(t, true, testOptions(), 0)
	req := rawFrame(18, 100, 7, nil)
	if err := writeAll(h.client, req); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrame(h.client); err != nil {
		t.Fatal(err)
	}
	if idleResponseSide(t, h) {
		t.Fatal("a local response took a response buffer")
	}
	h.clientLeaves(true)
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// The response buffer is pooled when the queue empties only if it holds
// nothing: a response that arrived before its request was queued stays
// buffered for the next responder.
func TestResponseReaderKeptWhileBuffered(t *testing.T) {
	client, proxyClient := loopbackPair(t)
	proxyUp, broker := loopbackPair(t)
	defer client.Close()
	defer broker.Close()
	s := New(testPeer(proxyClient), upConn(proxyUp, 0), testOptions(), discardLog(), nil)
	defer s.Close()
	if err := writeAll(broker, rawResponse(1, []byte("early"))); err != nil {
		t.Fatal(err)
	}
	r := s.responseReader()
	_ = proxyUp.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := r.Peek(4); err != nil {
		t.Fatal(err)
	}
	s.releaseResponseReader()
	if s.upR != r {
		t.Fatal("a reader holding a response was pooled")
	}
	if _, err := r.Discard(r.Buffered()); err != nil {
		t.Fatal(err)
	}
	s.releaseResponseReader()
	if s.upR != nil {
		t.Fatal("an empty reader was not pooled")
	}
}
