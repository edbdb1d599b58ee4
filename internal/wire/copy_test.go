package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() { c, err := ln.Accept(); ch <- result{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, c := range []net.Conn{a, r.c} {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { _ = c.Close() })
	}
	return a.(*net.TCPConn), r.c.(*net.TCPConn)
}

// hidden hides the concrete connection type, forcing CopyN's buffer path.
type hidden struct{ net.Conn }

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// copyCase copies n bytes between two TCP connections with CopyN while the
// source carries extra bytes after them, and checks that exactly the n
// bytes arrive and the extra ones are left for the next frame. It reports
// whether buf was written to.
func copyCase(t *testing.T, n int, plain bool) (usedBuf bool) {
	t.Helper()
	srcW, srcR := tcpPair(t)
	dstW, dstR := tcpPair(t)
	data := randBytes(n + 7)
	for i := range data {
		if data[i] == 0xa5 { // the buffer's sentinel: keep writes to buf visible
			data[i] = 0x5a
		}
	}
	go func() { _, _ = srcW.Write(data) }()
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(dstR); got <- b }()

	buf := bytes.Repeat([]byte{0xa5}, 4096)
	var dst io.Writer = dstW
	var src io.Reader = srcR
	if !plain {
		dst, src = hidden{dstW}, hidden{srcR}
	}
	if err := CopyN(dst, src, int64(n), buf); err != nil {
		t.Fatalf("CopyN(%d): %v", n, err)
	}
	_ = dstW.CloseWrite()
	if b := <-got; !bytes.Equal(b, data[:n]) {
		t.Fatalf("CopyN(%d) delivered %d bytes, not the %d sent", n, len(b), n)
	}
	rest := make([]byte, 7)
	if _, err := io.ReadFull(srcR, rest); err != nil || !bytes.Equal(rest, data[n:]) {
		t.Fatalf("bytes after the copied %d: %x, %v; want %x", n, rest, err, data[n:])
	}
	return !bytes.Equal(buf, bytes.Repeat([]byte{0xa5}, 4096))
}

func TestCopyN(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, spliceMin - 1, spliceMin, 200<<10 + 13} {
		usedBuf := copyCase(t, n, false)
		if n > 0 && !usedBuf {
			t.Errorf("n=%d through wrapped conns: buffer not used", n)
		}
		usedBuf = copyCase(t, n, true)
		// Between two TCP sockets a large body goes through io.CopyN
		// (splice), never through buf.
		if n >= spliceMin && usedBuf {
			t.Errorf("n=%d between TCP conns: copied through buf, not spliced", n)
		}
		if n > 0 && n < spliceMin && !usedBuf {
			t.Errorf("n=%d between TCP conns: small body did not use buf", n)
		}
	}
}

// A source that ends early is ErrUnexpectedEOF on both paths, so a frame
// cut short never looks like an orderly end of stream.
func TestCopyNShortSource(t *testing.T) {
	for _, n := range []int{100, 300 << 10} {
		for _, plain := range []bool{false, true} {
			srcW, srcR := tcpPair(t)
			dstW, dstR := tcpPair(t)
			data := randBytes(n - 10)
			go func() { _, _ = srcW.Write(data); _ = srcW.Close() }()
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(dstR); got <- b }()
			var dst io.Writer = dstW
			var src io.Reader = srcR
			if !plain {
				dst, src = hidden{dstW}, hidden{srcR}
			}
			err := CopyN(dst, src, int64(n), make([]byte, 1024))
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("n=%d plain=%v: CopyN error = %v, want ErrUnexpectedEOF", n, plain, err)
			}
			_ = dstW.Close()
			if b := <-got; !bytes.Equal(b, data) {
				t.Errorf("n=%d plain=%v: delivered %d of the %d bytes available", n, plain, len(b), len(data))
			}
		}
	}
}

// A missing buffer still copies (rather than spinning on empty reads).
func TestCopyNWithoutBuffer(t *testing.T) {
	var out bytes.Buffer
	src := bytes.NewReader([]byte("0123456789"))
	if err := CopyN(&out, src, 8, nil); err != nil || out.String() != "01234567" {
		t.Fatalf("CopyN = %q, %v", out.String(), err)
	}
	if err := CopyN(&out, src, 8, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short CopyN without buffer: %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestCopyNWriteError(t *testing.T) {
	boom := errors.New("boom")
	err := CopyN(failWriter{boom}, bytes.NewReader(make([]byte, 100)), 100, make([]byte, 16))
	if !errors.Is(err, boom) {
		t.Fatalf("CopyN error = %v, want the writer's", err)
	}
}

func TestCopyNNothing(t *testing.T) {
	r := bytes.NewReader([]byte("abc"))
	for _, n := range []int64{0, -1} {
		if err := CopyN(failWriter{errors.New("written")}, r, n, make([]byte, 8)); err != nil || r.Len() != 3 {
			t.Fatalf("CopyN(%d) = %v, read %d bytes", n, err, 3-r.Len())
		}
	}
}

func TestCopyNBufferPathDoesNotAllocate(t *testing.T) {
	data := make([]byte, 10000)
	src := bytes.NewReader(data)
	buf := make([]byte, 512)
	a := testing.AllocsPerRun(50, func() {
		src.Reset(data)
		if err := CopyN(io.Discard, src, 10000, buf); err != nil {
			t.Fatal(err)
		}
	})
	if a != 0 {
		t.Fatalf("%v allocations per buffered copy", a)
	}
}

func TestBufferPool(t *testing.T) {
	p := NewBufferPool(1000)
	b := p.Get()
	if len(*b) != 1000 {
		t.Fatalf("Get: %d bytes, want 1000", len(*b))
	}
	(*b)[0] = 1
	p.Put(b)
	// Steady state: a session's get and put does not allocate.
	if a := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); a != 0 {
		t.Fatalf("Get/Put allocates %v times", a)
	}
	c, d := p.Get(), p.Get()
	if &(*c)[0] == &(*d)[0] {
		t.Fatal("two Gets share one buffer")
	}
}
