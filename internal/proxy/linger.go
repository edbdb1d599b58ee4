package proxy

import "time"

// responderLinger is how long a responder whose queue emptied stays,
// reading the broker socket, for the client's next request. Starting a
// goroutine per round trip wakes a second thread of the runtime each
// time, which costs a client sending small requests one at a time more
// CPU than the relay itself. A parked responder holds its goroutine and
// its response buffer, so only busy connections linger (see
// Session.linger), and a connection quiet for longer than this holds
// neither.
const responderLinger = 250 * time.Millisecond // Options.ResponderLinger's default

// linger is the queue's linger hook: the responder reads on, into the
// response reader it already holds, until the broker sends something (the
// next response, or its close), ResponderLinger passes or lingerWake cuts
// it short. Whatever it read stays in the reader for the next response;
// an error (the linger's end, the wake, a close) is met again, or
// replaced, by the next read. Reading rather than waiting for readiness
// costs one system call less per round trip, and works over TLS too.
//
// Only a busy connection lingers: one whose queue emptied twice within
// the linger time. A connection that sends a request now and then (or
// once, like most of a client's idle connections) never holds a parked
// goroutine or a response buffer, not even briefly, so a burst of new
// connections costs no more memory than before. A reader still holding
// bytes (the next response came before its request was queued) needs no
// linger: the responder stops at once, and the next push starts one that
// reads them.
func (s *Session) linger() {
	now := time.Now()
	busy := !s.idleSince.IsZero() && now.Sub(s.idleSince) < s.opts.ResponderLinger
	s.idleSince = now
	if !busy || s.upR != nil && s.upR.Buffered() > 0 {
		return
	}
	r := s.responseReader()
	_ = s.up.SetReadDeadline(now.Add(s.opts.ResponderLinger))
	// A close whose wake came before that deadline was set would
	// otherwise be waited out: closed is set before the wake, so one
	// after this check sets its deadline after ours.
	if !s.queue.isClosed() {
		_, _ = r.Peek(1)
	}
	// The linger's deadline, or the queue's wake, replaced the one the
	// reader knows. A wake comes only while the queue says the responder
	// lingers, before it locks the queue again, so the next await (after
	// that) sets the deadline anew.
	s.upSrc.forget()
}

// lingerWake interrupts linger.
func (s *Session) lingerWake() { _ = s.up.SetReadDeadline(time.Now()) }
