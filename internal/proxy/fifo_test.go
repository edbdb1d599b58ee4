package proxy

import (
	"errors"
	"testing"
	"time"
)

// mustPush pushes e and returns whether a responder had to be started.
func mustPush(t *testing.T, q *fifo, e inflight) bool {
	t.Helper()
	ok, start := q.push(e)
	if !ok {
		t.Fatal("push on an open queue failed")
	}
	return start
}

func TestFIFOOrder(t *testing.T) {
	q := newFIFO(4)
	if !mustPush(t, q, inflight{corr: 0}) {
		t.Fatal("first push did not start a responder")
	}
	e, ok := q.next(false)
	next := int32(1)
	for want := range int32(150) {
		if !ok || e.corr != want {
			t.Fatalf("front = %d, %v; want %d", e.corr, ok, want)
		}
		// Keep one to four in flight, so the queue is never empty.
		for q.len() < 4 && next < 150 {
			if mustPush(t, q, inflight{corr: next}) {
				t.Fatal("push started a second responder")
			}
			next++
		}
		e, ok = q.next(true)
	}
	if ok || q.len() != 0 {
		t.Fatalf("next = %v, len %d after popping everything", ok, q.len())
	}
}

// A responder runs exactly while entries are queued: next stops it on an
// empty queue (after onIdle), and the next push starts one again.
func TestFIFOResponderLifecycle(t *testing.T) {
	q := newFIFO(4)
	idle := 0
	q.onIdle = func() { idle++ }
	for round := range 3 {
		if !mustPush(t, q, inflight{corr: int32(round)}) {
			t.Fatalf("round %d: push on an empty queue did not start a responder", round)
		}
		if mustPush(t, q, inflight{corr: 100}) {
			t.Fatal("push with a responder running started another")
		}
		if e, ok := q.next(false); !ok || e.corr != int32(round) {
			t.Fatalf("next = %d, %v", e.corr, ok)
		}
		if _, ok := q.next(true); !ok {
			t.Fatal("responder stopped with an entry queued")
		}
		if _, ok := q.next(true); ok {
			t.Fatal("responder kept running on an empty queue")
		}
		if idle != round+1 {
			t.Fatalf("onIdle ran %d times, want %d", idle, round+1)
		}
		if err := q.wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// A busy connection always has requests in flight; the queue's memory must
// stay bounded by max, not grow with every request it ever sent.
func TestFIFOBoundedWhileNeverEmpty(t *testing.T) {
	q := newFIFO(5)
	mustPush(t, q, inflight{corr: -1})
	q.next(false)
	for i := range 10000 {
		mustPush(t, q, inflight{corr: int32(i)})
		q.next(true)
	}
	if e, ok := q.next(false); !ok || e.corr != 9999 || q.len() != 1 {
		t.Fatalf("front %d, len %d", e.corr, q.len())
	}
	if c := cap(q.items); c > 8 {
		t.Fatalf("queue holds %d slots after 10000 requests with at most 2 in flight", c)
	}
}

// push blocks at max until the responder frees a slot.
func TestFIFOBackpressure(t *testing.T) {
	q := newFIFO(2)
	mustPush(t, q, inflight{corr: 1})
	mustPush(t, q, inflight{corr: 2})
	q.next(false)
	pushed := make(chan bool, 1)
	go func() { ok, _ := q.push(inflight{corr: 3}); pushed <- ok }()
	select {
	case <-pushed:
		t.Fatal("push beyond max did not block")
	case <-time.After(30 * time.Millisecond):
	}
	if e, ok := q.next(true); !ok || e.corr != 2 {
		t.Fatalf("front %d, %v", e.corr, ok)
	}
	if !<-pushed {
		t.Fatal("push failed after a pop")
	}
	if q.len() != 2 {
		t.Fatalf("len %d", q.len())
	}
}

// close fails a blocked push; a running responder still gets what is
// queued, and wait returns once it stopped.
func TestFIFOClose(t *testing.T) {
	q := newFIFO(1)
	mustPush(t, q, inflight{corr: 1})
	pushed := make(chan bool, 1)
	go func() { ok, _ := q.push(inflight{corr: 2}); pushed <- ok }()
	time.Sleep(10 * time.Millisecond)
	q.close()
	if <-pushed {
		t.Fatal("push succeeded on a closed queue")
	}
	if ok, _ := q.push(inflight{corr: 3}); ok {
		t.Fatal("push succeeded on a closed queue")
	}
	waited := make(chan error, 1)
	go func() { waited <- q.wait() }()
	if e, ok := q.next(false); !ok || e.corr != 1 {
		t.Fatalf("next after close = %d, %v", e.corr, ok)
	}
	select {
	case <-waited:
		t.Fatal("wait returned while the responder had an entry to deliver")
	case <-time.After(10 * time.Millisecond):
	}
	if _, ok := q.next(true); ok {
		t.Fatal("next on a closed, empty queue")
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}

// fail stops the responder with its error, closes the queue so that no
// other starts, and wait reports the error.
func TestFIFOFail(t *testing.T) {
	q := newFIFO(4)
	mustPush(t, q, inflight{corr: 1})
	mustPush(t, q, inflight{corr: 2})
	q.next(false)
	boom := errors.New("boom")
	q.fail(boom)
	q.fail(errors.New("later"))
	if ok, start := q.push(inflight{corr: 3}); ok || start {
		t.Fatalf("push after fail = %v, %v", ok, start)
	}
	if err := q.wait(); !errors.Is(err, boom) {
		t.Fatalf("wait = %v, want %v", err, boom)
	}
}
