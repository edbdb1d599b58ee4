package proxy

import "time"

// Drain stops reading new requests; responses to requests already sent
// are still delivered, then Run returns. A request the client is in the
// middle of sending is read to its end and forwarded first: cutting it
// would leave a truncated frame upstream and fail the whole session (a
// client that stalls mid-frame therefore holds the drain until Close).
func (s *Session) Drain() {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.draining.Store(true)
	if s.idle {
		_ = s.client.SetReadDeadline(time.Now())
	}
}

// awaitRequest marks the request pump as waiting for a new frame; false
// means the session drains and takes no more requests.
func (s *Session) awaitRequest() bool {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.idle = !s.draining.Load()
	return s.idle
}

// requestStarted marks the pump as inside a frame (or done waiting);
// true means a drain came first, so this request, of which nothing has
// been forwarded, is left unread.
func (s *Session) requestStarted() (drained bool) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.idle = false
	return s.draining.Load()
}
