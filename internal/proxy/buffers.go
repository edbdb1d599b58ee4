package proxy

import (
	"bufio"
	"net"
	"sync"
)

// ReaderPool holds read buffers of one size between frames, shared by
// every session of a server: a connection holds a buffer only while a
// frame passes, so idle connections, usually the most, cost none.
type ReaderPool struct {
	size int
	pool sync.Pool
}

// NewReaderPool makes a pool of size-byte readers.
func NewReaderPool(size int) *ReaderPool {
	p := &ReaderPool{size: size}
	p.pool.New = func() any { return bufio.NewReaderSize(nil, size) }
	return p
}

func (p *ReaderPool) get() *bufio.Reader  { return p.pool.Get().(*bufio.Reader) }
func (p *ReaderPool) put(r *bufio.Reader) { p.pool.Put(r) }

// MinRequestBufferSize is the smallest request buffer a session uses (see
// prefixSize); smaller settings are raised to it.
const MinRequestBufferSize = prefixSize

// prefixSize is how much of a frame the request pump reads before it takes
// a buffer: enough for the size prefix and, usually, a whole small request
// (a Fetch of a few partitions is about 90 bytes plus 33 per partition; a
// Metadata, Heartbeat or OffsetCommit is of that order), so such a request
// costs one read, not two. It lives in every session, idle or not: 256
// bytes is the compromise. Sessions' request buffers are at least this big
// (see New), so that the first fill always takes all of it.
const prefixSize = 256

// prefixReader hands out the first bytes of a frame, read while the
// session held no buffer, and then reads on from the connection.
type prefixReader struct {
	buf    [prefixSize]byte
	off, n int
	conn   net.Conn
	// ready, for a plain TCP client, waits for the next frame without
	// reading it: the request buffer then takes the whole frame in one
	// read, where the prefix would take a second one for a frame longer
	// than it (a 1 KiB Produce, say).
	ready *readiness
}

// fill blocks until the connection has the next bytes and keeps them (or,
// with ready, leaves them in the socket); an error means none came.
func (p *prefixReader) fill() error {
	p.off, p.n = 0, 0
	if p.ready != nil {
		return p.ready.wait()
	}
	for {
		n, err := p.conn.Read(p.buf[:])
		if n > 0 {
			p.n = n
			return nil // an error recurs on the next read
		}
		if err != nil {
			return err
		}
	}
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if p.off < p.n {
		k := copy(b, p.buf[p.off:p.n])
		p.off += k
		return k, nil
	}
	return p.conn.Read(b)
}

// releaseRequestReader pools the request pump's reader; what it still
// buffered is dropped.
func (s *Session) releaseRequestReader() {
	if s.clientR != nil {
		s.clientR.Reset(nil)
		s.reqBufs.put(s.clientR)
		s.clientR = nil
	}
}

// responseReader is the responder's reader of the broker connection,
// taken from the pool when a burst of responses starts.
func (s *Session) responseReader() *bufio.Reader {
	if s.upR == nil {
		s.upR = s.respBufs.get()
		s.upR.Reset(&s.upSrc)
	}
	return s.upR
}

// responsesIdle runs when the queue empties (fifo.onIdle, under the
// queue's lock while the responder still owns the response side): the
// response reader goes back to the pool, and the broker watch takes over
// noticing a close.
func (s *Session) responsesIdle() {
	s.releaseResponseReader()
	s.armBrokerWatch()
}

// releaseResponseReader pools the responder's reader when the queue
// empties. A broker sends nothing unasked, so it is empty then, except
// when the next response arrived before its request was queued: the
// reader then stays for the next responder.
func (s *Session) releaseResponseReader() {
	if s.upR != nil && s.upR.Buffered() == 0 {
		s.dropResponseReader()
	}
}

// dropResponseReader pools the response reader, dropping what it holds.
func (s *Session) dropResponseReader() {
	if s.upR != nil {
		s.upR.Reset(nil)
		s.respBufs.put(s.upR)
		s.upR = nil
	}
}
