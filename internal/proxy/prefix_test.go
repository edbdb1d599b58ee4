package proxy

import (
	"bytes"
	"testing"
)

// A request reader smaller than the prefix would leave prefix bytes behind
// when a body is copied from the socket: New raises it, whatever pool the
// caller passes, and pipelined frames straddling the prefix arrive intact.
func TestSmallRequestBufferKeepsFramesIntact(t *testing.T) {
	for _, size := range []int{64, 128, prefixSize - 1} {
		opts := testOptions()
		opts.RequestBufferSize = size
		opts.RequestReaders = NewReaderPool(size)
		h := startSession(t, true, opts, 0)
		a := rawFrame(2, 1, 1, bytes.Repeat([]byte{'a'}, 40))  // fits the prefix
		b := rawFrame(2, 1, 2, bytes.Repeat([]byte{'b'}, 400)) // straddles it
		c := rawFrame(2, 1, 3, bytes.Repeat([]byte{'c'}, 10))
		if err := writeAll(h.client, append(append(append([]byte(nil), a...), b...), c...)); err != nil {
			t.Fatal(err)
		}
		for _, want := range [][]byte{a, b, c} {
			if f, err := readFrame(h.broker); err != nil || !bytes.Equal(f, want) {
				t.Fatalf("buffer %d: broker got a %d-byte frame (%v), want %d bytes as sent", size, len(f), err, len(want))
			}
		}
	}
}
