package proxy

import (
	"net"
	"syscall"
)

// readiness waits for a plain TCP socket to turn readable (a byte, or its
// end, to read) without reading it, so the waiter holds no buffer: the
// request pump waits so for a client's next frame. Over TLS the socket's
// readability says nothing about records the TLS layer already holds, so
// only *net.TCPConn has one.
type readiness struct {
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
	r := &readiness{raw: raw}
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
