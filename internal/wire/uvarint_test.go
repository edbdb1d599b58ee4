package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
		dst, got, err := AppendUvarintFrom([]byte("x"), bytes.NewReader(append(enc, 0xff)))
		if err != nil || got != v || !bytes.Equal(dst, append([]byte("x"), enc...)) {
			t.Errorf("AppendUvarintFrom(%x) = %x, %d, %v", enc, dst, got, err)
		}
		// Every proper prefix is too short, not malformed.
		for i := 0; i < len(enc); i++ {
			if got, n := Uvarint(enc[:i]); got != 0 || n != 0 {
				t.Errorf("Uvarint(%x) = %d, %d; want 0, 0 (short)", enc[:i], got, n)
			}
			if _, _, err := AppendUvarintFrom(nil, bytes.NewReader(enc[:i])); !errors.Is(err, io.EOF) {
				t.Errorf("AppendUvarintFrom(%x) error = %v, want EOF", enc[:i], err)
			}
		}
	}
}

func TestUvarintMalformed(t *testing.T) {
	six := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}
	if got, n := Uvarint(six); got != 0 || n != -1 {
		t.Errorf("Uvarint(%x) = %d, %d; want 0, -1", six, got, n)
	}
	r := bytes.NewReader(six)
	if _, _, err := AppendUvarintFrom(nil, r); !errors.Is(err, ErrBadVarint) {
		t.Errorf("AppendUvarintFrom(%x) error = %v", six, err)
	}
	// It stops after five bytes rather than reading the stream's next field.
	if r.Len() != 1 {
		t.Errorf("AppendUvarintFrom consumed %d bytes of a malformed varint, want 5", len(six)-r.Len())
	}
	// As in Kafka's ByteUtils, a fifth byte's bits above 32 are dropped.
	if got, n := Uvarint([]byte{0xff, 0xff, 0xff, 0xff, 0x7f}); got != math.MaxUint32 || n != 5 {
		t.Errorf("overlong fifth byte = %d, %d", got, n)
	}
}

// AppendUvarintFrom must not read past the varint from a buffered stream,
// or the bytes after it would be lost to the caller.
func TestAppendUvarintFromStopsAtEnd(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader([]byte{0xac, 0x02, 'r', 'e', 's', 't'}))
	_, v, err := AppendUvarintFrom(nil, r)
	if err != nil || v != 300 {
		t.Fatalf("AppendUvarintFrom = %d, %v", v, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Fatalf("left %q, want \"rest\"", rest)
	}
}

// FuzzUvarint checks both decoders against each other and against kbin,
// franz-go's decoder, wherever kbin accepts the input.
func FuzzUvarint(f *testing.F) {
	for _, v := range []uint32{0, 127, 128, 300, math.MaxUint32} {
		f.Add(kbin.AppendUvarint(nil, v))
	}
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n := Uvarint(b)
		dst, v2, err := AppendUvarintFrom(nil, bytes.NewReader(b))
		switch {
		case n > 0:
			if err != nil || v2 != v || !bytes.Equal(dst, b[:n]) {
				t.Fatalf("Uvarint(%x) = %d, %d; AppendUvarintFrom = %x, %d, %v", b, v, n, dst, v2, err)
			}
			if n > 5 || b[n-1] >= 0x80 {
				t.Fatalf("Uvarint(%x) = %d ended at byte %d", b, v, n)
			}
		case n == 0:
			if len(b) >= 5 || !errors.Is(err, io.EOF) {
				t.Fatalf("Uvarint(%x) short, AppendUvarintFrom error %v", b, err)
			}
		case n == -1:
			if len(b) < 5 || !errors.Is(err, ErrBadVarint) {
				t.Fatalf("Uvarint(%x) malformed, AppendUvarintFrom error %v", b, err)
			}
		default:
			t.Fatalf("Uvarint(%x) used %d", b, n)
		}
		if kv, kn := kbin.Uvarint(b); kn > 0 && (kv != v || kn != n) {
			t.Fatalf("Uvarint(%x) = %d, %d; kbin %d, %d", b, v, n, kv, kn)
		}
	})
}
