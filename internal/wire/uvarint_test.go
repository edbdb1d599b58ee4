package wire

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
)

func TestUvarint(t *testing.T) {
	for _, v := range []uint32{0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, math.MaxUint32} {
		enc := kbin.AppendUvarint(nil, v)
		// Trailing bytes are not consumed.
		got, n := Uvarint(append(enc, 0xff, 0x01))
		if got != v || n != len(enc) {
			t.Errorf("Uvarint(%x) = %d, %d; want %d, %d", enc, got, n, v, len(enc))
		}
		// Every proper prefix is too short, not malformed.
		for i := 0; i < len(enc); i++ {
			if got, n := Uvarint(enc[:i]); got != 0 || n != 0 {
				t.Errorf("Uvarint(%x) = %d, %d; want 0, 0 (short)", enc[:i], got, n)
			}
		}
	}
}

func TestUvarintMalformed(t *testing.T) {
	six := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}
	if got, n := Uvarint(six); got != 0 || n != -1 {
		t.Errorf("Uvarint(%x) = %d, %d; want 0, -1", six, got, n)
	}
	// As in Kafka's ByteUtils, a fifth byte's bits above 32 are dropped.
	if got, n := Uvarint([]byte{0xff, 0xff, 0xff, 0xff, 0x7f}); got != math.MaxUint32 || n != 5 {
		t.Errorf("overlong fifth byte = %d, %d", got, n)
	}
}

// FuzzUvarint checks Uvarint's contract (short, malformed, or ended at a
// byte below 0x80 within five) and its value against kbin, franz-go's
// decoder, wherever kbin accepts the input.
func FuzzUvarint(f *testing.F) {
	for _, v := range []uint32{0, 127, 128, 300, math.MaxUint32} {
		f.Add(kbin.AppendUvarint(nil, v))
	}
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n := Uvarint(b)
		switch {
		case n > 0:
			if n > 5 || b[n-1] >= 0x80 {
				t.Fatalf("Uvarint(%x) = %d ended at byte %d", b, v, n)
			}
		case n == 0:
			if len(b) >= 5 {
				t.Fatalf("Uvarint(%x) short, with %d bytes", b, len(b))
			}
		case n == -1:
			if len(b) < 5 {
				t.Fatalf("Uvarint(%x) malformed, with %d bytes", b, len(b))
			}
		default:
			t.Fatalf("Uvarint(%x) used %d", b, n)
		}
		if kv, kn := kbin.Uvarint(b); kn > 0 && (kv != v || kn != n) {
			t.Fatalf("Uvarint(%x) = %d, %d; kbin %d, %d", b, v, n, kv, kn)
		}
	})
}
