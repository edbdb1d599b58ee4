package wire

import (
	"io"
	"net"
	"sync"
)

// spliceMin is the body size above which copying between two TCP sockets
// uses io.CopyN (splice on Linux); smaller bodies are cheaper through buf.
const spliceMin = 64 << 10

// CopyN copies exactly n bytes from src to dst. Between two plain TCP
// sockets large bodies are spliced in the kernel; otherwise buf is used, so
// no copy allocates. A source that ends early is io.ErrUnexpectedEOF on
// either path: a frame cut short is never an orderly end of stream.
func CopyN(dst io.Writer, src io.Reader, n int64, buf []byte) error {
	if n <= 0 {
		return nil
	}
	if len(buf) == 0 {
		// Without a buffer the loop below could not make progress.
		return copyN(dst, src, n)
	}
	if n >= spliceMin {
		if d, ok := dst.(*net.TCPConn); ok {
			if s, ok := src.(*net.TCPConn); ok {
				return spliceN(d, s, n)
			}
		}
	}
	for n > 0 {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		r, err := io.ReadFull(src, chunk)
		if r > 0 {
			if _, werr := dst.Write(chunk[:r]); werr != nil {
				return werr
			}
			n -= int64(r)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// copyN is io.CopyN with a short source reported as ErrUnexpectedEOF.
func copyN(dst io.Writer, src io.Reader, n int64) error {
	_, err := io.CopyN(dst, src, n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// limitedReaders recycles the io.LimitedReader that tells TCPConn.ReadFrom
// how much to splice: io.CopyN would allocate one per call.
var limitedReaders = sync.Pool{New: func() any { return new(io.LimitedReader) }}

// spliceN is copyN between two TCP sockets (splice on Linux) without
// allocating.
func spliceN(dst, src *net.TCPConn, n int64) error {
	lr := limitedReaders.Get().(*io.LimitedReader)
	lr.R, lr.N = src, n
	written, err := dst.ReadFrom(lr)
	lr.R = nil
	limitedReaders.Put(lr)
	if err == nil && written < n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// BufferPool hands out fixed-size copy buffers so that sessions do not
// each keep one while idle.
type BufferPool struct {
	size int
	pool sync.Pool
}

// NewBufferPool makes a pool of size-byte buffers.
func NewBufferPool(size int) *BufferPool {
	p := &BufferPool{size: size}
	p.pool.New = func() any { b := make([]byte, size); return &b }
	return p
}

// Get returns a buffer of the pool's size.
func (p *BufferPool) Get() *[]byte { return p.pool.Get().(*[]byte) }

// Put returns a buffer to the pool.
func (p *BufferPool) Put(b *[]byte) { p.pool.Put(b) }

// spliceChunk is how much CopyNProgress splices between progress calls.
const spliceChunk = 1 << 20

// CopyNProgress is CopyN that calls progress before every chunk it moves
// (each buffer-sized read and write, or each spliceChunk bytes spliced), so a
// caller can extend an I/O deadline while data flows: a timeout then means
// no progress, not a slow peer at the other end. A nil progress is CopyN.
func CopyNProgress(dst io.Writer, src io.Reader, n int64, buf []byte, progress func()) error {
	if progress == nil {
		return CopyN(dst, src, n, buf)
	}
	chunk := int64(max(len(buf), 1))
	if n >= spliceMin && bothTCP(dst, src) {
		// Large enough that the splice path stays as cheap as a plain
		// copy; a timeout must then cover moving 1 MiB to the slower
		// peer (35 KB/s at the default 30 s).
		chunk = spliceChunk
	}
	for n > 0 {
		k := min(n, chunk)
		progress()
		if err := CopyN(dst, src, k, buf); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func bothTCP(dst io.Writer, src io.Reader) bool {
	_, d := dst.(*net.TCPConn)
	_, s := src.(*net.TCPConn)
	return d && s
}
