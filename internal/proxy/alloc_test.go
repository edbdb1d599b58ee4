package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// passThrough is a path over loopback TCP to a fake broker that answers
// every request with resp, using only preallocated buffers so that any
// allocation measured is the path's: through a Session (the proxy),
// straight to the broker (direct), or through a raw TCP forwarder.
type passThrough struct {
	client, brokerEnd net.Conn
	req, resp         []byte
	corr              int32
	brokerDone        chan struct{}
}

func newPassThrough(tb testing.TB, reqSize, respSize int) *passThrough {
	return newRoundTripper(tb, rawFrame(2, 5, 0, make([]byte, reqSize)), rawResponse(0, make([]byte, respSize)))
}

// newRoundTripper is a proxied passThrough for the given request and
// response frames (correlation ids are filled in per round trip).
func newRoundTripper(tb testing.TB, req, resp []byte) *passThrough {
	return newPath(tb, "proxy", req, resp)
}

// newPath is a passThrough of the given kind: "proxy", "direct" or
// "forwarder" (io.Copy each way between two TCP connections: splice).
func newPath(tb testing.TB, kind string, req, resp []byte) *passThrough {
	p := &passThrough{req: req, resp: resp, brokerDone: make(chan struct{})}
	switch kind {
	case "proxy":
		opts := watchedOptions(tb) // as the server runs sessions
		opts.MaxFrameSize = 4 << 20
		h := startSession(tb, true, opts, 0)
		p.client, p.brokerEnd = h.client, h.broker
	case "direct":
		p.client, p.brokerEnd = loopbackPair(tb)
	case "forwarder":
		var in, out net.Conn
		p.client, in = loopbackPair(tb)
		out, p.brokerEnd = loopbackPair(tb)
		copied := make(chan struct{}, 2)
		pump := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			copied <- struct{}{}
		}
		go pump(out, in)
		go pump(in, out)
		tb.Cleanup(func() { <-copied; <-copied })
	default:
		tb.Fatalf("unknown path %q", kind)
	}
	go p.broker(len(p.req))
	tb.Cleanup(func() {
		_ = p.client.Close()
		_ = p.brokerEnd.Close()
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
		if _, err := io.ReadFull(p.brokerEnd, in); err != nil {
			return
		}
		copy(out[4:8], in[8:12])
		if _, err := p.brokerEnd.Write(out); err != nil {
			return
		}
	}
}

// roundTrip sends one request and reads its response.
func (p *passThrough) roundTrip(tb testing.TB, in []byte) {
	p.corr++
	binary.BigEndian.PutUint32(p.req[8:], uint32(p.corr))
	if _, err := p.client.Write(p.req); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(p.client, in); err != nil {
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
// or copied), each small and large. Each gives the request and response.
var hotPaths = []string{"produce-1KiB", "produce-1MiB", "fetch-1KiB", "fetch-1MiB"}

func hotPathFrames(name string) (req, resp []byte) {
	produce := func(records int) ([]byte, []byte) {
		// v9, flexible: null transactional id, acks=1, then an opaque
		// rest the proxy does not read.
		body := append([]byte{0, 0, 1}, make([]byte, records)...)
		return rawFrame(0, 9, 0, body), rawResponse(0, append([]byte{0}, make([]byte, 60)...))
	}
	fetch := func(records int) ([]byte, []byte) {
		v := kmsg.NewPtrFetchResponse().MaxVersion()
		r := kmsg.NewPtrFetchResponse()
		r.SetVersion(v)
		topic := kmsg.NewFetchResponseTopic()
		part := kmsg.NewFetchResponseTopicPartition()
		part.RecordBatches = make([]byte, records)
		topic.Partitions = []kmsg.FetchResponseTopicPartition{part}
		r.Topics = []kmsg.FetchResponseTopic{topic}
		return rawFrame(1, v, 0, make([]byte, 80)), rawResponse(0, r.AppendTo([]byte{0})) // empty header tags
	}
	switch name {
	case "produce-1KiB":
		return produce(1 << 10)
	case "produce-1MiB":
		return produce(1 << 20)
	case "fetch-1KiB":
		return fetch(1 << 10)
	case "fetch-1MiB":
		return fetch(1 << 20)
	}
	panic("unknown hot path " + name)
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
	for _, name := range hotPaths {
		t.Run(name, func(t *testing.T) {
			req, resp := hotPathFrames(name)
			p := newRoundTripper(t, req, resp)
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

// The benchmark's three paths deliver the broker's response byte for byte
// (so its comparison compares like with like).
func TestBenchmarkPathsDeliver(t *testing.T) {
	for _, name := range hotPaths {
		for _, kind := range []string{"direct", "forwarder", "proxy"} {
			req, resp := hotPathFrames(name)
			p := newPath(t, kind, req, resp)
			in := make([]byte, len(resp))
			for range 3 {
				p.roundTrip(t, in)
				want := append([]byte(nil), resp...)
				binary.BigEndian.PutUint32(want[4:], uint32(p.corr))
				if !bytes.Equal(in, want) {
					t.Fatalf("%s %s: response differs from the broker's", name, kind)
				}
			}
		}
	}
}

// BenchmarkHotPaths measures Produce and Fetch round trips over loopback
// TCP through the proxy, and, in the same run and taking turns, straight
// to the fake broker and through a raw TCP forwarder (io.Copy: splice),
// reporting each path's µs per round trip and the proxy's ratios to them.
// ns/op is one round trip on each of the three paths.
func BenchmarkHotPaths(b *testing.B) {
	kinds := []string{"direct", "forwarder", "proxy"}
	for _, name := range hotPaths {
		b.Run(name, func(b *testing.B) {
			req, resp := hotPathFrames(name)
			var paths [3]*passThrough
			var spent [3]time.Duration
			in := make([]byte, len(resp))
			for i, kind := range kinds {
				paths[i] = newPath(b, kind, append([]byte(nil), req...), resp)
				for range 10 {
					paths[i].roundTrip(b, in)
				}
			}
			b.SetBytes(int64(3 * (len(req) + len(resp))))
			b.ReportAllocs()
			rounds := 0
			for b.Loop() {
				for i, p := range paths {
					t0 := time.Now()
					p.roundTrip(b, in)
					spent[i] += time.Since(t0)
				}
				rounds++
			}
			us := func(i int) float64 { return spent[i].Seconds() * 1e6 / float64(rounds) }
			for i, kind := range kinds {
				b.ReportMetric(us(i), kind+"-µs/rt")
			}
			b.ReportMetric(us(2)/us(1), "proxy/forwarder")
			b.ReportMetric(us(2)/us(0), "proxy/direct")
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
