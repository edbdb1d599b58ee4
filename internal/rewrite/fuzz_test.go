package rewrite

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzMapper maps every broker to one proxy address, so a second pass over
// a rewritten body must find nothing to change; host "fail" exercises the
// error path.
type fuzzMapper struct{}

func (fuzzMapper) MapBroker(_ int32, host string, _ int32) (string, int32, error) {
	if host == "fail" {
		return "", 0, errBoom
	}
	return "proxy", 1, nil
}

// fuzzKey feeds arbitrary bodies at every version of key to Response, seeded
// with the table tests' encodings. It must not panic or hang; an error
// returns no body; an unchanged body comes back as the same slice; a
// rewritten body decodes again and is a fixed point of a second pass (every
// address is then the proxy's).
func fuzzKey(f *testing.F, key int16, seeds func(v int16) []byte) {
	maxV := kmsg.ResponseForKey(key).MaxVersion()
	for v := int16(0); v <= maxV; v++ {
		f.Add(uint8(v), seeds(v))
	}
	f.Fuzz(func(t *testing.T, vb uint8, body []byte) {
		body = defuseTagCounts(body)
		// A hang does not fail a fuzz run, it only stalls it; a watchdog
		// turns one into a crash the fuzzer records with its input.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Response hangs: v%d body %x", vb, body)) })
		defer watchdog.Stop()
		v := int16(vb) % (maxV + 1)
		out, changed, err := response(t, key, v, body, fuzzMapper{})
		if err != nil {
			if out != nil || changed {
				t.Fatalf("error %v with out=%d bytes changed=%v", err, len(out), changed)
			}
			return
		}
		if !changed {
			if !sameSlice(out, body) {
				t.Fatal("unchanged but not the same slice")
			}
			return
		}
		out2, changed2, err := response(t, key, v, out, fuzzMapper{})
		if err != nil || changed2 || !sameSlice(out2, out) {
			t.Fatalf("second pass over rewritten body: changed=%v err=%v", changed2, err)
		}
	})
}

// defuseTagCounts returns body with every uvarint cut to at most three
// bytes (below 2^21): in any run of bytes with the continuation bit, every
// third one loses it. kmsg v1.15 reads a tag count and then iterates it in
// full even once the data has run out (internalReadTags and the generated
// readFrom loops), so four 0xff bytes at a tag-count position cost minutes
// of CPU. Only a broker can send a response body, so the proxy accepts that
// (docs in rewrite.go); the fuzzer would otherwise stall on such inputs.
// Counts below 2^21 cost milliseconds and are still fuzzed, and everything
// else in the body keeps its shape.
func defuseTagCounts(body []byte) []byte {
	out := append([]byte(nil), body...)
	run := 0
	for i, c := range out {
		if c < 0x80 {
			run = 0
			continue
		}
		if run++; run == 3 {
			out[i] &= 0x7f
			run = 0
		}
	}
	return out
}

func seedsFor(key int16) func(v int16) []byte {
	for _, c := range rewriteCases() {
		if c.key == key {
			return func(v int16) []byte { return encode(c.build(v)) }
		}
	}
	panic("no rewrite case for key")
}

func FuzzProduce(f *testing.F)          { fuzzKey(f, 0, seedsFor(0)) }
func FuzzFetch(f *testing.F)            { fuzzKey(f, 1, seedsFor(1)) }
func FuzzMetadata(f *testing.F)         { fuzzKey(f, 3, seedsFor(3)) }
func FuzzFindCoordinator(f *testing.F)  { fuzzKey(f, 10, seedsFor(10)) }
func FuzzDescribeCluster(f *testing.F)  { fuzzKey(f, 60, seedsFor(60)) }
func FuzzShareFetch(f *testing.F)       { fuzzKey(f, 78, seedsFor(78)) }
func FuzzShareAcknowledge(f *testing.F) { fuzzKey(f, 79, seedsFor(79)) }
func FuzzAPIVersions(f *testing.F) {
	fuzzKey(f, 18, func(v int16) []byte { return encode(apiVersionsFixture(v)) })
}
