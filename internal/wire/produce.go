package wire

import (
	"encoding/binary"
	"errors"
)

// ErrShortHeader means the bytes at hand end before the field sought.
var ErrShortHeader = errors.New("produce request header longer than the bytes read")

// ProduceAcks reads the acks field of a Produce request from its first
// bytes (frame without the size prefix), skipping the client id, header
// tagged fields and transactional id. Only these few bytes are parsed, so
// the records stream through untouched.
func ProduceAcks(b []byte, version int16) (int16, error) {
	flexible, _ := RequestFlexible(0, version)
	off := 8 // key, version, correlation id
	if len(b) < off+2 {
		return 0, ErrShortHeader
	}
	if n := int16(binary.BigEndian.Uint16(b[off:])); n > 0 {
		off += int(n)
	}
	off += 2
	if flexible {
		var err error
		if off, err = SkipTags(b, off); err != nil {
			return 0, ErrShortHeader
		}
	}
	if version >= 3 { // transactional_id
		if flexible {
			n, used := Uvarint(b[min(off, len(b)):])
			if used <= 0 {
				return 0, ErrShortHeader
			}
			off += used
			if n > 0 {
				off += int(n) - 1
			}
		} else {
			if len(b) < off+2 {
				return 0, ErrShortHeader
			}
			if n := int16(binary.BigEndian.Uint16(b[off:])); n > 0 {
				off += int(n)
			}
			off += 2
		}
	}
	if len(b) < off+2 {
		return 0, ErrShortHeader
	}
	return int16(binary.BigEndian.Uint16(b[off:])), nil
}
