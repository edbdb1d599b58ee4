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

// reply is the decoded outcome of a request the proxy sent itself.
type reply struct {
	body []byte // response body after the header
	err  error
}

// fifo is the bounded in-flight queue of one connection. It grows only as
// far as requests are really in flight, so an idle connection costs a few
// bytes rather than a channel of max-open-requests entries.
type fifo struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	items    []inflight
	head     int
	max      int
	closed   bool
}

func newFIFO(max int) *fifo {
	q := &fifo{max: max}
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
	for len(q.items)-q.head >= q.max && !q.closed {
		q.notFull.Wait()
	}
	if q.closed {
		return false
	}
	q.items = append(q.items, e)
	q.notEmpty.Signal()
	return true
}

// front returns the oldest entry without removing it, blocking until there
// is one, so that it keeps counting against max until its response has been
// delivered. ok is false once the queue is closed and empty.
func (q *fifo) front() (e inflight, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.notEmpty.Wait()
	}
	if q.head == len(q.items) {
		return inflight{}, false
	}
	return q.items[q.head], true
}

// pop removes the oldest entry once its response is delivered.
func (q *fifo) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items[q.head] = inflight{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.notFull.Signal()
}

// len is the number of requests in flight.
func (q *fifo) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// close wakes every waiter; pop still returns what is queued.
func (q *fifo) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
}
