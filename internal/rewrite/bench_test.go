package rewrite

import (
	"testing"
)

// benchMapper is what topology will do: a fixed address per node.
type benchMapper struct{}

func (benchMapper) MapBroker(id int32, _ string, _ int32) (string, int32, error) {
	return "127.0.0.1", 40000 + id, nil
}

func BenchmarkMetadataRewrite(b *testing.B) {
	body := encode(buildMetadata(12))
	c := testChain(b, benchMapper{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := runChain(c, 3, 12, body); err != nil {
			b.Fatal(err)
		}
	}
}
