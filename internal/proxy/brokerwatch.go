package proxy

// armBrokerWatch asks the broker watch, if any, to report a close of the
// broker connection while the session is idle.
func (s *Session) armBrokerWatch() {
	if s.opts.BrokerWatch != nil {
		s.opts.BrokerWatch.arm(s)
	}
}

// brokerStirred is the watch's report that the broker hung up. If nothing
// is owed on the broker side, the session ends now (the client sees the
// close, as on a direct connection); otherwise the responder will meet the
// close itself, and the watch is armed again when the session is idle.
func (s *Session) brokerStirred() {
	if !s.queue.closeIfIdle() {
		return
	}
	s.brokerClosed.Store(true)
	// Not on the watcher's goroutine: closing a TLS client connection
	// may wait for a slow client, and other sessions' events wait too.
	go s.Close()
}
