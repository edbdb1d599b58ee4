package rewrite

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
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

// BenchmarkMetadataAtScale compares the whole-message rewrite (decode,
// map, encode: what a chain with the acls stage does) with the stream
// (what the proxy does otherwise) on full Metadata responses of 3 brokers
// and 200 or 2,000 topics of 10 partitions.
func BenchmarkMetadataAtScale(b *testing.B) {
	for _, topics := range []int{200, 2000} {
		body := metadataBody(12, 3, topics, 10)
		b.Run(fmt.Sprintf("whole/%dx10", topics), func(b *testing.B) {
			c := testChain(b, testMapper{})
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := runChain(c, 3, 12, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("stream/%dx10", topics), func(b *testing.B) {
			head := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
			head = binary.BigEndian.AppendUint32(head, 1)
			src := bytes.NewReader(body)
			r := bufio.NewReaderSize(src, 4096)
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(body)
				r.Reset(src)
				if err := StreamMetadata(io.Discard, r, src, head, len(body), 12, testMapper{}, buf, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
