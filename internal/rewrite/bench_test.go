package rewrite

import (
	"testing"
)

// TestNeededDoesNotAllocate: Needed runs for every response on the proxy's
// pass-through path.
func TestNeededDoesNotAllocate(t *testing.T) {
	sink := false
	allocs := testing.AllocsPerRun(1000, func() {
		for key := int16(0); key < 100; key++ {
			sink = sink != Needed(key, 12)
		}
	})
	if allocs != 0 {
		t.Fatalf("Needed allocates %.1f times per run", allocs)
	}
	_ = sink
}

var benchSink bool

func BenchmarkNeeded(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		benchSink = Needed(int16(i%100), 12)
	}
}

// benchMapper is what topology will do: a fixed address per node.
type benchMapper struct{}

func (benchMapper) MapBroker(id int32, _ string, _ int32) (string, int32, error) {
	return "127.0.0.1", 40000 + id, nil
}

func BenchmarkMetadataRewrite(b *testing.B) {
	body := encode(buildMetadata(12))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Response(3, 12, body, benchMapper{}); err != nil {
			b.Fatal(err)
		}
	}
}
