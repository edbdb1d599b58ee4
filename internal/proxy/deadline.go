package proxy

import (
	"net"
	"time"
)

// Timeouts mean "no progress for this long", not "the whole transfer took
// this long": a large response to a slow client, or a large request from a
// slow producer, may take minutes while bytes keep moving. Each read from
// (or write to) the broker extends its deadline.
//
// A deadline is moved only when it falls outside the window it must be
// in: at least the timeout ahead, and at most a quarter of the timeout
// more (plus, on the read side, what the request allows the broker). A
// stream of small requests therefore sets a deadline about every quarter
// of the timeout instead of several times per round trip: each set is a
// timer change in the runtime, and moving a timer earlier wakes the
// network poller. The cost is precision: a broker that stops making
// progress fails the session after between the timeout and 1.25 times it
// (2.25 times within the first bytes of a response to a request that
// allows the broker a wait of its own: see progress).

// deadline is one direction's deadline on the broker connection, as last
// set by its only owner (the responder for reads, the holder of the
// session's write lock for writes).
type deadline struct {
	at  time.Time // zero: unknown, set on next use
	set func(time.Time) error
}

// within makes the deadline lie between lo and hi from now, moving it to
// lo plus slack if it does not.
func (d *deadline) within(lo, hi, slack time.Duration) {
	now := time.Now()
	if left := d.at.Sub(now); !d.at.IsZero() && left >= lo && left <= hi {
		return
	}
	d.at = now.Add(lo + slack)
	_ = d.set(d.at)
}

// upstreamReader is the broker connection as the response reader sees it:
// while armed (a response has started), every read extends the read
// deadline by the read timeout. Before that, await bounds the wait for
// the response to start by the read timeout plus what the request itself
// allows the broker (a JoinGroup or a long-poll Fetch may wait minutes),
// so a broker that accepts and never answers fails the session instead
// of holding it open.
type upstreamReader struct {
	conn    net.Conn
	timeout time.Duration
	read    deadline
	wait    time.Duration // what the request being answered allows the broker
	armed   bool          // only the responder reads and arms it
}

func newUpstreamReader(conn net.Conn, timeout time.Duration) upstreamReader {
	return upstreamReader{conn: conn, timeout: timeout, read: deadline{set: conn.SetReadDeadline}}
}

func (u *upstreamReader) Read(p []byte) (int, error) {
	if u.armed {
		u.progress()
	}
	return u.conn.Read(p)
}

// await bounds the wait for the next response to start: the read timeout
// plus wait, what the request allows the broker.
func (u *upstreamReader) await(wait time.Duration) {
	u.wait = wait
	if u.timeout > 0 {
		u.read.within(u.timeout+wait, u.timeout+wait+u.timeout/4, u.timeout/4)
	}
}

// forget drops what the reader knows of the deadline: someone else set
// it (Run, when the client hung up), so the next await sets it anew.
func (u *upstreamReader) forget() { u.read.at = time.Time{} }

// progress keeps the read deadline at least the read timeout ahead once a
// response has started. The deadline await set is kept while it is no
// more than the request's wait (at most one more read timeout) beyond
// that, so a small response sets none.
func (u *upstreamReader) progress() {
	if u.timeout > 0 {
		u.read.within(u.timeout, u.timeout+u.timeout/4+min(u.wait, u.timeout), u.timeout/4)
	}
}

// arm marks a response started; disarm marks it through. The deadline is
// left in place when the responder stops: whoever reads the connection
// next sets its own first.
func (u *upstreamReader) arm() {
	u.armed = true
	u.progress()
}

func (u *upstreamReader) disarm() { u.armed = false }

// extendRead is the progress hook of copies that read the broker
// connection directly (splice), bypassing upstreamReader.
func (s *Session) extendRead() { s.upSrc.progress() }

// extendWrite is the progress hook of request copies to the broker. The
// caller holds writeMu.
func (s *Session) extendWrite() {
	if t := s.opts.WriteTimeout; t > 0 {
		s.write.within(t, t+t/4, t/4)
	}
}
