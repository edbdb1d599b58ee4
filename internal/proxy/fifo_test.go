package proxy

import (
	"testing"
	"time"
)

func TestFIFOOrder(t *testing.T) {
	q := newFIFO(4)
	for round := range 50 {
		// Keep one to four in flight, so the queue is never empty.
		for i := range 3 {
			if !q.push(inflight{corr: int32(round*3 + i)}) {
				t.Fatal("push on an open queue failed")
			}
		}
		for i := range 3 {
			e, ok := q.front()
			if !ok || e.corr != int32(round*3+i) {
				t.Fatalf("front = %d, %v; want %d", e.corr, ok, round*3+i)
			}
			if i < 2 || round == 49 {
				q.pop()
			}
		}
		if round < 49 {
			q.pop()
		}
	}
	if q.len() != 0 {
		t.Fatalf("len %d after popping everything", q.len())
	}
}

// A busy connection always has requests in flight; the queue's memory must
// stay bounded by max, not grow with every request ever sent.
func TestFIFOBoundedWhileNeverEmpty(t *testing.T) {
	q := newFIFO(5)
	q.push(inflight{corr: -1})
	for i := range 10000 {
		q.push(inflight{corr: int32(i)})
		q.pop()
	}
	if e, _ := q.front(); e.corr != 9999 || q.len() != 1 {
		t.Fatalf("front %d, len %d", e.corr, q.len())
	}
	if c := cap(q.items); c > 8 {
		t.Fatalf("queue holds %d slots after 10000 requests with at most 2 in flight", c)
	}
}

// push blocks at max until a pop frees a slot.
func TestFIFOBackpressure(t *testing.T) {
	q := newFIFO(2)
	q.push(inflight{corr: 1})
	q.push(inflight{corr: 2})
	pushed := make(chan bool, 1)
	go func() { pushed <- q.push(inflight{corr: 3}) }()
	select {
	case <-pushed:
		t.Fatal("push beyond max did not block")
	case <-time.After(30 * time.Millisecond):
	}
	q.pop()
	if !<-pushed {
		t.Fatal("push failed after a pop")
	}
	if e, _ := q.front(); e.corr != 2 || q.len() != 2 {
		t.Fatalf("front %d len %d", e.corr, q.len())
	}
}

// close wakes a blocked push (which fails) and a waiting front; what is
// queued is still handed out after close.
func TestFIFOClose(t *testing.T) {
	q := newFIFO(1)
	q.push(inflight{corr: 1})
	pushed := make(chan bool, 1)
	go func() { pushed <- q.push(inflight{corr: 2}) }()
	time.Sleep(10 * time.Millisecond)
	q.close()
	if <-pushed {
		t.Fatal("push succeeded on a closed queue")
	}
	if e, ok := q.front(); !ok || e.corr != 1 {
		t.Fatalf("front after close = %d, %v", e.corr, ok)
	}
	q.pop()
	if _, ok := q.front(); ok {
		t.Fatal("front on a closed, empty queue")
	}

	empty := newFIFO(1)
	got := make(chan bool, 1)
	go func() { _, ok := empty.front(); got <- ok }()
	time.Sleep(10 * time.Millisecond)
	empty.close()
	if <-got {
		t.Fatal("front on a closed empty queue returned an entry")
	}
}
