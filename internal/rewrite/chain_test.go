package rewrite

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// testChain is the chain the proxy builds from this package's stages.
func testChain(t testing.TB, m Mapper) *pipeline.Chain {
	t.Helper()
	c, err := pipeline.NewChain(Versions(), Addresses(m))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// response runs a response body through the rewrite stages as the proxy
// does: untouched when no stage wants the key and version, else decoded
// once, rewritten and re-encoded if anything changed.
func response(t testing.TB, key, version int16, body []byte, m Mapper) ([]byte, bool, error) {
	t.Helper()
	return runChain(testChain(t, m), key, version, body)
}

// runChain is response with a chain built once (for benchmarks).
func runChain(c *pipeline.Chain, key, version int16, body []byte) ([]byte, bool, error) {
	r := c.Route(key, version)
	if !r.Response() {
		return body, false, nil
	}
	return c.OnResponse(r, &pipeline.Exchange{Key: key, Version: version}, body)
}

// TestRoutes: the stages want exactly the responses that carry addresses
// (and ApiVersions), at every version kmsg knows, and the requests above
// that.
func TestRoutes(t *testing.T) {
	c := testChain(t, testMapper{})
	wantResp := func(key, v int16) bool {
		switch key {
		case 3, 10, 60, 18, 78, 79:
			return true
		case 0:
			return v >= 10
		case 1:
			return v >= 16
		}
		return false
	}
	for key := int16(-1); key <= kmsg.MaxKey+5; key++ {
		max := int16(-1)
		if r := kmsg.ResponseForKey(key); r != nil {
			max = r.MaxVersion()
		}
		for v := int16(0); v <= max+3; v++ {
			r := c.Route(key, v)
			want := wantResp(key, v) && v <= max
			if r.Response() != want {
				t.Errorf("%s v%d: Response()=%v, want %v", kmsg.NameForKey(key), v, r.Response(), want)
			}
			if r.Request() != (wantResp(key, v) && v > max) {
				t.Errorf("%s v%d: Request()=%v", kmsg.NameForKey(key), v, r.Request())
			}
			if r.RequestBody() {
				t.Errorf("%s v%d: no rewrite stage reads requests", kmsg.NameForKey(key), v)
			}
			if st := c.Streamer(r); (st != nil) != (key == 1 && v >= 16 && v <= max || key == 3 && v <= max) {
				t.Errorf("%s v%d: streamer %v", kmsg.NameForKey(key), v, st)
			}
		}
	}
	if c.Route(55, 2).Response() {
		t.Error("DescribeQuorum is passed through by decision")
	}
}

// TestRouteDoesNotAllocate: Route runs for every request and response on
// the proxy's pass-through path.
func TestRouteDoesNotAllocate(t *testing.T) {
	c := testChain(t, testMapper{})
	sink := false
	allocs := testing.AllocsPerRun(1000, func() {
		for key := int16(0); key < 100; key++ {
			sink = sink != c.Route(key, 12).Response()
		}
	})
	if allocs != 0 {
		t.Fatalf("Route allocates %.1f times per run", allocs)
	}
	_ = sink
}

// TestVersionAboveKmsg: a request for a rewritable key at a version kmsg
// cannot parse is refused (the connection closes) rather than forwarded,
// since its response could not be rewritten and would leak addresses.
// ApiVersions above kmsg's max is answered with UNSUPPORTED_VERSION.
func TestVersionAboveKmsg(t *testing.T) {
	c := testChain(t, testMapper{})
	for _, rc := range rewriteCases() {
		v := kmsg.ResponseForKey(rc.key).MaxVersion() + 1
		r := c.Route(rc.key, v)
		if r.Response() {
			t.Errorf("%s v%d: response routed at a version kmsg cannot parse", kmsg.NameForKey(rc.key), v)
		}
		ex := &pipeline.Exchange{Key: rc.key, Version: v}
		verdict := c.OnRequest(r, ex)
		if rc.key == kmsg.ApiVersions.Int16() {
			if verdict.Action != pipeline.Answer {
				t.Errorf("ApiVersions v%d: verdict %v, want a local answer", v, verdict.Action)
			}
			continue
		}
		if verdict.Action != pipeline.Close || verdict.Err == nil {
			t.Errorf("%s v%d: verdict %v (%v), want close", kmsg.NameForKey(rc.key), v, verdict.Action, verdict.Err)
		}
	}
	if _, err := pipeline.DecodeResponse(3, kmsg.ResponseForKey(3).MaxVersion()+1, nil); !errors.Is(err, pipeline.ErrUnsupportedVersion) {
		t.Errorf("decode above max: %v", err)
	}
}
