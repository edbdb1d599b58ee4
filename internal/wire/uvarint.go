package wire

import (
	"errors"
	"io"
)

// ErrBadVarint is returned for an unsigned varint longer than five bytes.
var ErrBadVarint = errors.New("malformed uvarint")

// AppendUvarintFrom reads one unsigned varint byte by byte from r,
// appending the raw bytes to dst so they can be forwarded unchanged.
func AppendUvarintFrom(dst []byte, r io.ByteReader) ([]byte, uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return dst, 0, err
		}
		dst = append(dst, b)
		v |= uint32(b&0x7f) << (7 * i)
		if b < 0x80 {
			return dst, v, nil
		}
	}
	return dst, 0, ErrBadVarint
}

// Uvarint decodes an unsigned varint from b, returning the value and the
// number of bytes used (0 if b is too short, -1 if malformed).
func Uvarint(b []byte) (uint32, int) {
	var v uint32
	for i := 0; i < 5 && i < len(b); i++ {
		v |= uint32(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	if len(b) >= 5 {
		return 0, -1
	}
	return 0, 0
}
