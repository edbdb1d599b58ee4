package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"
)

// passThrough is a session over loopback TCP whose broker answers every
// request with a response of respSize bytes, using only preallocated
// buffers so that any allocation measured is the proxy's.
type passThrough struct {
	h          *harness
	req, resp  []byte
	corr       int32
	brokerDone chan struct{}
}

func newPassThrough(tb testing.TB, reqSize, respSize int) *passThrough {
	opts := testOptions()
	opts.MaxFrameSize = 4 << 20
	p := &passThrough{
		h:          startSession(tb, true, opts, 0),
		req:        rawFrame(2, 5, 0, make([]byte, reqSize)),
		resp:       rawResponse(0, make([]byte, respSize)),
		brokerDone: make(chan struct{}),
	}
	go p.broker(len(p.req))
	tb.Cleanup(func() {
		_ = p.h.client.Close()
		_ = p.h.broker.Close()
		<-p.brokerDone
	})
	return p
}

// broker reads fixed-size requests and answers each with resp carrying
// the request's correlation id.
func (p *passThrough) broker(reqLen int) {
	defer close(p.brokerDone)
	in := make([]byte, reqLen)
	out := make([]byte, len(p.resp))
	copy(out, p.resp)
	for {
		if _, err := io.ReadFull(p.h.broker, in); err != nil {
			return
		}
		copy(out[4:8], in[8:12])
		if _, err := p.h.broker.Write(out); err != nil {
			return
		}
	}
}

// roundTrip sends one request and reads its response.
func (p *passThrough) roundTrip(tb testing.TB, in []byte) {
	p.corr++
	binary.BigEndian.PutUint32(p.req[8:], uint32(p.corr))
	if _, err := p.h.client.Write(p.req); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(p.h.client, in); err != nil {
		tb.Fatal(err)
	}
	if int32(binary.BigEndian.Uint32(in[4:])) != p.corr {
		tb.Fatalf("response for %d, want %d", binary.BigEndian.Uint32(in[4:]), p.corr)
	}
}

// A request and response the proxy does not rewrite cost no allocation
// once the session is warm.
func TestPassThroughDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("timing-sensitive allocation count")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers, which are then allocated again")
	}
	p := newPassThrough(t, 200, 1000)
	in := make([]byte, len(p.resp))
	for range 50 {
		p.roundTrip(t, in)
	}
	if a := testing.AllocsPerRun(500, func() { p.roundTrip(t, in) }); a > 0 {
		t.Fatalf("%v allocations per pass-through round trip", a)
	}
}

// BenchmarkPassThrough measures one request/response round trip through a
// session over loopback TCP; bytes are the response's.
func BenchmarkPassThrough(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			p := newPassThrough(b, 100, size)
			in := make([]byte, len(p.resp))
			p.roundTrip(b, in)
			b.SetBytes(int64(len(p.resp)))
			b.ReportAllocs()
			for b.Loop() {
				p.roundTrip(b, in)
			}
		})
	}
}
