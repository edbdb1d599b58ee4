package proxy

import "sync"

// inflight is one request awaiting its response, in the order sent.
type inflight struct {
	corr    int32
	key     int16
	version int16
	// local, if set, is a complete response frame built by the proxy that
	// takes this request's place in the response order.
	local []byte
	// reply, if set, receives the response instead of the client: the
	// request was the proxy's own (re-authentication).
	reply chan<- reply
}

// reply is the response to a request the proxy sent itself. A failure
// needs no field: it ends the session, which RoundTrip also waits on.
type reply struct {
	body []byte // response body after the header
}

// fifo is the bounded in-flight queue of one connection: a ring that grows
// only as far as requests are really in flight (at most max slots), so an
// idle connection costs a few bytes rather than a channel of
// max-open-requests entries, and a busy one that never empties does not
// grow with every request it ever sent.
type fifo struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	items    []inflight // ring; len(items) is its capacity
	head     int        // index of the oldest entry
	n        int        // entries in flight
	max      int
	closed   bool
}

// newFIFO makes a queue for limit requests in flight (at least one).
func newFIFO(limit int) *fifo {
	q := &fifo{max: max(limit, 1)}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	return q
}

// push appends e, blocking while max requests are in flight (backpressure
// on the client, as a broker's max.in.flight would be). It returns false if
// the queue was closed.
func (q *fifo) push(e inflight) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n >= q.max && !q.closed {
		q.notFull.Wait()
	}
	if q.closed {
		return false
	}
	if q.n == len(q.items) {
		q.grow()
	}
	q.items[(q.head+q.n)%len(q.items)] = e
	q.n++
	q.notEmpty.Signal()
	return true
}

// waitRoom blocks until a push would not block, so the caller can write a
// request before queueing it: the response pump is then woken only once
// the request is on its way, not before. Only the holder of the session's
// write lock pushes after waitRoom, so the room cannot be taken meanwhile.
func (q *fifo) waitRoom() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n >= q.max && !q.closed {
		q.notFull.Wait()
	}
	return !q.closed
}

// grow doubles the ring (up to max), unwrapping it so head is 0.
func (q *fifo) grow() {
	items := make([]inflight, min(max(2*len(q.items), 4), q.max))
	for i := range q.n {
		items[i] = q.items[(q.head+i)%len(q.items)]
	}
	q.items, q.head = items, 0
}

// front returns the oldest entry without removing it, blocking until there
// is one, so that it keeps counting against max until its response has been
// delivered. ok is false once the queue is closed and empty.
func (q *fifo) front() (e inflight, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n == 0 && !q.closed {
		q.notEmpty.Wait()
	}
	if q.n == 0 {
		return inflight{}, false
	}
	return q.items[q.head], true
}

// pop removes the oldest entry once its response is delivered. The slot is
// cleared so that a local response or reply channel is not kept alive.
func (q *fifo) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items[q.head] = inflight{}
	q.head = (q.head + 1) % len(q.items)
	q.n--
	// Both pushers (the request pump and a renewal) may wait; wake them
	// all rather than reason about which one a signal reaches.
	q.notFull.Broadcast()
}

// len is the number of requests in flight.
func (q *fifo) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// isClosed reports whether close was called: no more requests will be
// sent on this session.
func (q *fifo) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// close wakes every waiter; front still returns what is queued.
func (q *fifo) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
}
