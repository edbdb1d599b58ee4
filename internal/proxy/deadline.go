package proxy

import (
	"net"
	"time"
)

// Timeouts mean "no progress for this long", not "the whole transfer took
// this long": a large response to a slow client, or a large request from a
// slow producer, may take minutes while bytes keep moving. Each read from
// (or write to) the broker extends its deadline.

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
	armed   bool // only the responder reads and arms it
}

func (u *upstreamReader) Read(p []byte) (int, error) {
	if u.armed && u.timeout > 0 {
		_ = u.conn.SetReadDeadline(time.Now().Add(u.timeout))
	}
	return u.conn.Read(p)
}

// await bounds the wait for the next response to start: the read timeout
// plus wait, what the request allows the broker.
func (u *upstreamReader) await(wait time.Duration) {
	if u.timeout > 0 {
		_ = u.conn.SetReadDeadline(time.Now().Add(u.timeout + wait))
	}
}

// arm starts a response's deadline; disarm clears it once it is through.
func (u *upstreamReader) arm() {
	u.armed = true
	if u.timeout > 0 {
		_ = u.conn.SetReadDeadline(time.Now().Add(u.timeout))
	}
}

func (u *upstreamReader) disarm() {
	if u.armed && u.timeout > 0 {
		_ = u.conn.SetReadDeadline(time.Time{})
	}
	u.armed = false
}

// extendRead is the progress hook of copies that read the broker
// connection directly (splice), bypassing upstreamReader.
func (s *Session) extendRead() {
	if s.opts.ReadTimeout > 0 {
		_ = s.up.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
	}
}

// extendWrite is the progress hook of request copies to the broker.
func (s *Session) extendWrite() {
	if s.opts.WriteTimeout > 0 {
		_ = s.up.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	}
}
