package proxy

import (
	"bytes"
	"testing"
	"time"
)

// Drain stops taking requests but delivers every response already owed,
// then Run returns nil; a request sent after the drain is not forwarded.
func TestDrainDeliversInFlight(t *testing.T) {
	h := startSession(t, true, testOptions(), 0)
	for i := range 3 {
		if err := writeAll(h.client, rawFrame(2, 5, int32(i), []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := readFrame(h.broker); err != nil {
			t.Fatal(err)
		}
	}
	h.sess.Drain()
	if err := writeAll(h.client, rawFrame(2, 5, 3, []byte("late"))); err != nil {
		t.Fatal(err)
	}
	if !h.running(50 * time.Millisecond) {
		t.Fatal("Run returned with three responses owed")
	}
	for i := range 3 {
		if err := writeAll(h.broker, rawResponse(int32(i), []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, rawResponse(int32(i), []byte{byte(i)})) {
			t.Fatalf("response %d: %x, %v", i, f, err)
		}
	}
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v after a drain", err)
	}
	expectEOF(t, h.broker, "broker (the late request)")
}

// A drain while a request is half read lets that request finish: it is
// forwarded whole and answered, instead of the connection failing with a
// read timeout and a truncated frame upstream.
func TestDrainMidRequest(t *testing.T) {
	opts := testOptions()
	opts.RequestBufferSize = 256
	h := startSession(t, true, opts, 0)
	frame := rawFrame(2, 5, 1, bytes.Repeat([]byte("x"), 10000))
	if err := writeAll(h.client, frame[:1000]); err != nil {
		t.Fatal(err)
	}
	// The proxy has started forwarding: it is inside the frame.
	got := make([]byte, 100)
	_ = h.broker.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := h.broker.Read(got); err != nil {
		t.Fatal(err)
	}
	h.sess.Drain()
	time.Sleep(20 * time.Millisecond)
	if err := writeAll(h.client, frame[1000:]); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, len(frame))
	n := 0
	for n < len(frame)-100 {
		_ = h.broker.SetReadDeadline(time.Now().Add(ioTimeout))
		k, err := h.broker.Read(rest[n : len(frame)-100])
		if err != nil {
			t.Fatalf("broker got %d of %d bytes: %v", 100+n, len(frame), err)
		}
		n += k
	}
	if !bytes.Equal(append(got, rest[:n]...), frame) {
		t.Fatal("request forwarded altered")
	}
	if err := writeAll(h.broker, rawResponse(1, []byte("ok"))); err != nil {
		t.Fatal(err)
	}
	if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, rawResponse(1, []byte("ok"))) {
		t.Fatalf("response: %x, %v", f, err)
	}
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// Draining an idle session, or one not yet running, ends it at once.
func TestDrainIdle(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	h.sess.Drain()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestDrainBeforeRun(t *testing.T) {
	client, proxyClient := connPair(t, false)
	proxyUp, broker := connPair(t, false)
	defer client.Close()
	defer broker.Close()
	s := New(testPeer(proxyClient), upConn(proxyUp, 0), testOptions(), discardLog(), nil)
	s.Drain()
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(ioTimeout):
		s.Close()
		t.Fatal("Run did not return after a drain")
	}
}

// Close ends a session at once, even with responses owed.
func TestCloseWithInFlight(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	go func() { _ = writeAll(h.client, rawFrame(2, 5, 1, nil)) }()
	if _, err := readFrame(h.broker); err != nil {
		t.Fatal(err)
	}
	h.sess.Close()
	h.wait()
	expectEOF(t, h.client, "client")
}
