//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// BrokerWatch notices that a broker closed a connection on which no
// request is in flight (a broker restart, its connections.max.idle.ms),
// and ends that session at once, so the client sees the close as it would
// on a direct connection and reconnects before its next request, instead
// of losing that request to a dead socket. A session whose responder is
// not running has no goroutine reading the broker (that keeps idle
// connections small), so one epoll set and one goroutine watch every idle
// session of a server: a session arms its broker socket each time it goes
// idle (one-shot, level-triggered), and the watcher checks, when the
// socket turns readable, that the session is still idle: a broker never
// sends unasked, so readable then means closed (or broken).
type BrokerWatch struct {
	once    sync.Once
	initErr error
	epfd    int
	wake    [2]int // a byte on wake[1] ends the loop
	stopped chan struct{}

	mu     sync.Mutex
	closed bool
	byID   map[uint64]*Session
	nextID uint64
}

// NewBrokerWatch makes a watcher; it takes no resources until the first
// session arms it. Close it when the server's sessions are done.
func NewBrokerWatch() *BrokerWatch {
	return &BrokerWatch{byID: map[uint64]*Session{}, stopped: make(chan struct{})}
}

const wakeID = 0 // epoll data of the wake pipe; sessions count from 1

func (w *BrokerWatch) start() error {
	w.once.Do(func() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			w.initErr = fmt.Errorf("broker watch: epoll: %w", err)
			return
		}
		if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
			_ = syscall.Close(epfd)
			w.initErr = fmt.Errorf("broker watch: pipe: %w", err)
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
			_ = syscall.Close(epfd)
			_ = syscall.Close(w.wake[0])
			_ = syscall.Close(w.wake[1])
			w.initErr = fmt.Errorf("broker watch: epoll_ctl: %w", err)
			return
		}
		w.epfd = epfd
		go w.loop()
	})
	return w.initErr
}

// Close stops the watcher; sessions armed later are not watched.
func (w *BrokerWatch) Close() {
	w.once.Do(func() { w.initErr = errors.New("broker watch closed") }) // never start after Close
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	running := w.initErr == nil
	w.mu.Unlock()
	if !running {
		return
	}
	_, _ = syscall.Write(w.wake[1], []byte{0})
	<-w.stopped
	w.mu.Lock() // arm and forget use epfd under mu
	_ = syscall.Close(w.epfd)
	_ = syscall.Close(w.wake[0])
	_ = syscall.Close(w.wake[1])
	w.mu.Unlock()
}

func (w *BrokerWatch) loop() {
	defer close(w.stopped)
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return // only a bug (a bad epfd) gets here; sessions keep working unwatched
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == wakeID {
				return
			}
			w.mu.Lock()
			s := w.byID[id]
			if s != nil {
				s.watch.armed = false // one-shot: it fired
			}
			w.mu.Unlock()
			if s != nil {
				s.brokerStirred()
			}
		}
	}
}

// brokerWatchState is a session's registration.
type brokerWatchState struct {
	raw       syscall.RawConn // nil: not a socket (tests' pipes), not watched
	id        uint64
	added     bool // registered with the epoll set
	armed     bool // the one-shot registration has not fired yet
	forgotten bool
}

func (st *brokerWatchState) init(c net.Conn) { st.raw = rawConn(c) }

// arm (re)registers s's broker socket for one hang-up event, unless the
// last registration has not fired yet: then there is nothing to do, which
// keeps the syscall off the path of a session that is busy and idle in
// turns. The caller owns the response side (under s.queue.mu in onIdle);
// w.mu orders it against the watcher, forget and Close.
func (w *BrokerWatch) arm(s *Session) {
	st := &s.watch
	if st.raw == nil || w.start() != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || st.forgotten || st.armed {
		return
	}
	if st.id == 0 {
		w.nextID++
		st.id = w.nextID
		w.byID[st.id] = s
	}
	op := syscall.EPOLL_CTL_MOD
	if !st.added {
		op = syscall.EPOLL_CTL_ADD
	}
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, // HUP and ERR are implied
		Fd:     int32(uint32(st.id)),
		Pad:    int32(uint32(st.id >> 32)),
	}
	_ = st.raw.Control(func(fd uintptr) {
		if syscall.EpollCtl(w.epfd, op, int(fd), &ev) == nil {
			st.added, st.armed = true, true
		}
	})
}

// forget unregisters s for good; called before its broker socket closes.
func (w *BrokerWatch) forget(s *Session) {
	st := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	st.forgotten = true
	if st.id != 0 {
		delete(w.byID, st.id)
	}
	if st.added && !w.closed {
		_ = st.raw.Control(func(fd uintptr) {
			_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	st.added, st.armed = false, false
}

// rawConn is the socket beneath c (through TLS) for the watch, or nil.
func rawConn(c any) syscall.RawConn {
	for {
		switch v := c.(type) {
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		case syscall.Conn:
			rc, err := v.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		default:
			return nil
		}
	}
}
