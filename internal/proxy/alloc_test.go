package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
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
	return newRoundTripper(tb, rawFrame(2, 5, 0, make([]byte, reqSize)), rawResponse(0, make([]byte, respSize)))
}

// newRoundTripper is a passThrough for the given request and response
// frames (correlation ids are filled in per round trip).
func newRoundTripper(tb testing.TB, req, resp []byte) *passThrough {
	opts := watchedOptions(tb) // as the server runs sessions
	opts.MaxFrameSize = 4 << 20
	p := &passThrough{
		h:          startSession(tb, true, opts, 0),
		req:        req,
		resp:       resp,
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

// hotPaths are the round trips that carry data: a Produce (acks read from
// the request) and a Fetch v16+ (streamed by StreamFetch, records spliced
// or copied), each small and large.
func hotPaths(tb testing.TB) map[string]func() *passThrough {
	produce := func(records int) func() *passThrough {
		return func() *passThrough {
			// v9, flexible: null transactional id, acks=1, then an
			// opaque rest the proxy does not read.
			body := append([]byte{0, 0, 1}, make([]byte, records)...)
			return newRoundTripper(tb, rawFrame(0, 9, 0, body), rawResponse(0, append([]byte{0}, make([]byte, 60)...)))
		}
	}
	fetch := func(records int) func() *passThrough {
		return func() *passThrough {
			v := kmsg.NewPtrFetchResponse().MaxVersion()
			r := kmsg.NewPtrFetchResponse()
			r.SetVersion(v)
			topic := kmsg.NewFetchResponseTopic()
			part := kmsg.NewFetchResponseTopicPartition()
			part.RecordBatches = make([]byte, records)
			topic.Partitions = []kmsg.FetchResponseTopicPartition{part}
			r.Topics = []kmsg.FetchResponseTopic{topic}
			resp := rawResponse(0, r.AppendTo([]byte{0})) // empty header tags
			return newRoundTripper(tb, rawFrame(1, v, 0, make([]byte, 80)), resp)
		}
	}
	return map[string]func() *passThrough{
		"produce-1KiB": produce(1 << 10), "produce-1MiB": produce(1 << 20),
		"fetch-1KiB": fetch(1 << 10), "fetch-1MiB": fetch(1 << 20),
	}
}

// Produce and Fetch round trips cost no allocation once the session is
// warm, large bodies (spliced) included.
func TestHotPathsDoNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("timing-sensitive allocation count")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers, which are then allocated again")
	}
	for name, start := range hotPaths(t) {
		t.Run(name, func(t *testing.T) {
			p := start()
			in := make([]byte, len(p.resp))
			for range 20 {
				p.roundTrip(t, in)
			}
			if a := testing.AllocsPerRun(100, func() { p.roundTrip(t, in) }); a > 0 {
				t.Fatalf("%v allocations per %s round trip", a, name)
			}
		})
	}
}

// BenchmarkHotPaths measures Produce and Fetch round trips through a
// session over loopback TCP; bytes are request plus response.
func BenchmarkHotPaths(b *testing.B) {
	for _, name := range []string{"produce-1KiB", "produce-1MiB", "fetch-1KiB", "fetch-1MiB"} {
		b.Run(name, func(b *testing.B) {
			p := hotPaths(b)[name]()
			in := make([]byte, len(p.resp))
			p.roundTrip(b, in)
			b.SetBytes(int64(len(p.req) + len(p.resp)))
			b.ReportAllocs()
			for b.Loop() {
				p.roundTrip(b, in)
			}
		})
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
