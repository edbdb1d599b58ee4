package proxy

import (
	"net"
	"syscall"
	"time"
)

// responderLinger is how long a responder whose queue emptied stays,
// parked on the broker socket, for the client's next request. Starting a
// goroutine per round trip wakes a second thread of the runtime each
// time, which costs a client sending small requests one at a time more
// CPU than the relay itself. A parked responder holds no buffer, only its
// goroutine (about 4 KiB), and a connection quiet for longer than this
// holds neither.
const responderLinger = 250 * time.Millisecond // Options.ResponderLinger's default

// readiness waits for a plain TCP socket to turn readable (a byte, or its
// end, to read) without reading it, so the waiter holds no buffer. Over
// TLS the socket's readability says nothing about records the TLS layer
// already holds, so only *net.TCPConn has one.
type readiness struct {
	conn  net.Conn
	raw   syscall.RawConn
	ready func(fd uintptr) bool // bound once: no allocation per wait
	b     [1]byte
}

func newReadiness(c net.Conn) *readiness {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	r := &readiness{conn: c, raw: raw}
	r.ready = r.check
	return r
}

// check is RawConn.Read's callback: it peeks, so bytes already queued
// count even if their readiness event was consumed, and a stale event
// (one whose bytes a read took since) does not; false makes Read wait
// for the next event.
func (r *readiness) check(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), r.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN
}

// wait blocks until the socket is readable, its read deadline passes or
// it closes.
func (r *readiness) wait() error { return r.raw.Read(r.ready) }

// linger parks the responder until the broker socket turns readable (the
// next response, or the broker hanging up), d passes, or
// the queue's wake (lingerWake) cuts it short. It leaves the read
// deadline set; the responder sets its own before it reads.
func (r *readiness) linger(d time.Duration) {
	_ = r.conn.SetReadDeadline(time.Now().Add(d))
	_ = r.wait()
}

// lingerWake interrupts linger.
func (r *readiness) lingerWake() { _ = r.conn.SetReadDeadline(time.Now()) }

// linger is the queue's linger hook. A response reader still holding
// bytes (the next response came before its request was queued) means the
// socket need not turn readable again: the responder stops at once, and
// the next push starts one that reads them.
//
// Only a busy connection lingers: one whose queue emptied twice within
// the linger time. A connection that sends a request now and then (or
// once, like most of a client's idle connections) never holds a parked
// goroutine, not even briefly, so a burst of new connections costs no
// more memory than before.
func (s *Session) linger() {
	now := time.Now()
	busy := !s.idleSince.IsZero() && now.Sub(s.idleSince) < s.opts.ResponderLinger
	s.idleSince = now
	if busy && s.upR == nil {
		s.brokerReady.linger(s.opts.ResponderLinger)
		// The linger's deadline, or the queue's wake, replaced the one
		// the reader knows. A wake comes only while the queue says the
		// responder lingers, before it locks the queue again, so the
		// next await (after that) sets the deadline anew.
		s.upSrc.forget()
	}
}
