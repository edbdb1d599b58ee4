package proxy

import (
	"sync"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// inflight is one request awaiting its response, in the order sent.
type inflight struct {
	corr    int32
	key     int16
	version int16
	// local, if set, is a complete response frame built by the proxy that
	// takes this request's place in the response order.
	local []byte
	// after, if set, completes the broker's response before the response
	// stages (a request a stage forwarded only part of).
	after pipeline.AfterResponse
	// reply, if set, receives the response instead of the client: the
	// request was the proxy's own (re-authentication).
	reply chan<- reply
	// wait is how long the broker may hold the request before answering
	// (a long-poll Fetch, a JoinGroup), on top of the read timeout.
	wait time.Duration
	// sent, when upgraded, is the version the request went to the broker
	// at (pipeline.Exchange.ReplaceAt): its answer comes back in it.
	sent     int16
	upgraded bool
	// read is when the request was read from the client (for
	// proxy_request_duration_seconds); zero for the proxy's own.
	read time.Time
}

// wireVersion is the version the broker answers in.
func (e inflight) wireVersion() int16 {
	if e.upgraded {
		return e.sent
	}
	return e.version
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
//
// It also decides, under its mutex, when a responder (the goroutine that
// delivers responses) runs: exactly while entries are queued. push reports
// that one must start when it makes the queue non-empty with none running;
// next tells the running one to stop when the queue is empty. So no entry
// is ever without a responder, two never run at once, and an idle
// connection has none (nor its buffer).
type fifo struct {
	mu         sync.Mutex
	notFull    sync.Cond
	stopped    sync.Cond  // a responder stopped
	items      []inflight // ring; len(items) is its capacity
	head       int        // index of the oldest entry
	n          int        // entries in flight
	max        int
	closed     bool
	responding bool  // a responder runs
	reserved   bool  // waitRoom let a request through that is not pushed yet
	err        error // the first error a responder stopped with
	// onIdle runs under mu when a responder stops because the queue is
	// empty, while it still owns the response side (to pool its buffer).
	onIdle func()
	// linger, if set, is where a responder whose queue emptied waits
	// (without the lock, still owning the response side: onIdle runs
	// after it) for a little while before it stops: until the broker
	// sends something, the linger time passes or wake interrupts it. A
	// request sent meanwhile is answered by this responder, so a client
	// sending small requests one at a time does not start a goroutine
	// for each.
	linger, wake func()
	lingering    bool // a responder waits in linger
}

// newFIFO makes a queue for limit requests in flight (at least one).
func newFIFO(limit int) *fifo {
	q := &fifo{max: max(limit, 1)}
	q.notFull.L = &q.mu
	q.stopped.L = &q.mu
	return q
}

// push appends e, blocking while max requests are in flight (backpressure
// on the client, as a broker's max.in.flight would be). ok is false if the
// queue was closed; start is true if the caller must start a responder,
// which then owns the response side until next returns false.
func (q *fifo) push(e inflight) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n >= q.max && !q.closed {
		q.notFull.Wait()
	}
	if q.closed {
		return false, false
	}
	if q.n == len(q.items) {
		q.grow()
	}
	q.items[(q.head+q.n)%len(q.items)] = e
	q.n++
	q.reserved = false
	start = !q.responding
	q.responding = true
	return true, start
}

// waitRoom blocks until a push would not block, so the caller can write a
// request before queueing it: the response side learns of a request only
// once it is on its way. Only the holder of the session's write lock
// pushes after waitRoom, so the room cannot be taken meanwhile.
func (q *fifo) waitRoom() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n >= q.max && !q.closed {
		q.notFull.Wait()
	}
	q.reserved = !q.closed
	return !q.closed
}

// closeIfIdle closes the queue if nothing is owed on the broker side: no
// request in flight, none about to be sent, no responder running. It
// reports whether it closed it; no request is accepted after that.
func (q *fifo) closeIfIdle() bool {
	q.mu.Lock()
	idle := !q.closed && !q.responding && !q.reserved && q.n == 0
	if idle {
		q.closed = true
	}
	q.mu.Unlock()
	if idle {
		q.notFull.Broadcast()
	}
	return idle
}

// grow doubles the ring (up to max), unwrapping it so head is 0.
func (q *fifo) grow() {
	items := make([]inflight, min(max(2*len(q.items), 4), q.max))
	for i := range q.n {
		items[i] = q.items[(q.head+i)%len(q.items)]
	}
	q.items, q.head = items, 0
}

// next is the responder's step: it removes the entry just delivered (if
// done), then returns the oldest one without removing it, so that it keeps
// counting against max until its response has been delivered. ok is false
// once the queue is empty (after the linger, if any, found no new
// request): the responder must then stop (onIdle has run), and the next
// push starts a new one.
func (q *fifo) next(done bool) (e inflight, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if done {
		// The slot is cleared so that a local response or reply
		// channel is not kept alive.
		q.items[q.head] = inflight{}
		q.head = (q.head + 1) % len(q.items)
		q.n--
		// Both pushers (the request pump and a renewal) may wait; wake
		// them all rather than reason about which one a signal reaches.
		q.notFull.Broadcast()
	}
	if q.n == 0 && q.linger != nil && !q.closed {
		q.lingering = true
		q.mu.Unlock()
		q.linger()
		q.mu.Lock()
		q.lingering = false
	}
	if q.n == 0 {
		if q.onIdle != nil {
			q.onIdle()
		}
		q.responding = false
		q.stopped.Broadcast()
		return inflight{}, false
	}
	return q.items[q.head], true
}

// fail stops the responder with err: the queue closes, so no push starts
// another, and what is left in it is never answered.
func (q *fifo) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.closed = true
	q.responding = false
	q.mu.Unlock()
	q.stopped.Broadcast()
	q.notFull.Broadcast()
}

// wait blocks until no responder runs, and returns the first error one
// stopped with. After close, none can start again, so a nil error means
// every entry queued was delivered.
func (q *fifo) wait() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.responding {
		q.stopped.Wait()
	}
	return q.err
}

// lingerState reports whether a responder runs and whether it lingers.
func (q *fifo) lingerState() (responding, lingering bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.responding, q.lingering
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

// close fails every push from now on and wakes pushers waiting for room;
// a running responder still delivers what is queued.
func (q *fifo) close() {
	q.mu.Lock()
	q.closed = true
	if q.lingering {
		q.wake() // nothing more will be sent: no reason to wait
	}
	q.mu.Unlock()
	q.notFull.Broadcast()
}
