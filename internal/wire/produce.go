package wire

import (
	"encoding/binary"
	"errors"
)

// ErrShortHeader means the bytes at hand end before the field sought.
var ErrShortHeader = errors.New("produce request header longer than the bytes read")

// errBadProduceHead is a Produce head no broker would accept (a negative
// topic count or name length).
var errBadProduceHead = errors.New("malformed produce request head")

// ProduceAcks reads the acks field of a Produce request from its first
// bytes (frame without the size prefix), skipping the client id, header
// tagged fields and transactional id. Only these few bytes are parsed, so
// the records stream through untouched.
func ProduceAcks(b []byte, version int16) (int16, error) {
	_, _, off, err := produceStart(b, version)
	if err != nil {
		return 0, err
	}
	if len(b) < off+2 {
		return 0, ErrShortHeader
	}
	return int16(binary.BigEndian.Uint16(b[off:])), nil
}

// ProduceHead is what a Produce request says before its first record
// data: enough to authorize a request that names a single topic without
// reading its records.
type ProduceHead struct {
	TransactionalID *string
	Acks            int16
	Topics          int      // how many topics the request names
	Topic           string   // the first topic's name (v0–12)
	TopicID         [16]byte // the first topic's id (v13+)
}

// ParseProduceHead reads a Produce request's head from its first bytes
// (frame without the size prefix): ErrShortHeader if they end before the
// first topic's name or id does.
func ParseProduceHead(b []byte, version int16) (ProduceHead, error) {
	var h ProduceHead
	flexible, txn, off, err := produceStart(b, version)
	if err != nil {
		return h, err
	}
	if txn.ok {
		id := string(b[txn.from:txn.to])
		h.TransactionalID = &id
	}
	if len(b) < off+6 { // acks, timeout
		return h, ErrShortHeader
	}
	h.Acks = int16(binary.BigEndian.Uint16(b[off:]))
	off += 6
	var n int
	if n, off, err = arrayLen(b, off, flexible); err != nil {
		return h, err
	}
	h.Topics = n
	if n == 0 {
		return h, nil
	}
	if version >= 13 {
		if len(b) < off+16 {
			return h, ErrShortHeader
		}
		copy(h.TopicID[:], b[off:])
		return h, nil
	}
	name, _, err := stringAt(b, off, flexible)
	if err != nil {
		return h, err
	}
	if !name.ok {
		return h, errBadProduceHead
	}
	h.Topic = string(b[name.from:name.to])
	return h, nil
}

// span is where a string lies in a frame; !ok is null.
type span struct {
	from, to int
	ok       bool
}

// produceStart skips a Produce request's header and returns where its
// transactional id (v3+) lies and where acks starts. It does not allocate:
// it runs for every produce.
func produceStart(b []byte, version int16) (flexible bool, txn span, acksOff int, err error) {
	flexible, _ = RequestFlexible(0, version)
	off, ok := bodyStart(b, 0, version)
	if !ok {
		return flexible, txn, 0, ErrShortHeader
	}
	if version >= 3 {
		if txn, off, err = stringAt(b, off, flexible); err != nil {
			return flexible, txn, 0, err
		}
	}
	return flexible, txn, off, nil
}

// stringAt finds the nullable string at off (compact when flexible) and
// returns where it ends.
func stringAt(b []byte, off int, flexible bool) (span, int, error) {
	n := 0
	if flexible {
		if off > len(b) {
			return span{}, 0, ErrShortHeader
		}
		v, used := Uvarint(b[off:])
		if used <= 0 || uint64(v) > uint64(len(b)-off-used)+1 { // bounded before it becomes an int
			return span{}, 0, ErrShortHeader
		}
		off += used
		n = int(v) - 1
	} else {
		if len(b) < off+2 {
			return span{}, 0, ErrShortHeader
		}
		n = int(int16(binary.BigEndian.Uint16(b[off:])))
		off += 2
	}
	if n < 0 {
		return span{}, off, nil
	}
	if len(b) < off+n {
		return span{}, 0, ErrShortHeader
	}
	return span{off, off + n, true}, off + n, nil
}

// arrayLen reads an array length at off (compact when flexible); a null
// array counts as empty.
func arrayLen(b []byte, off int, flexible bool) (int, int, error) {
	if flexible {
		if off > len(b) {
			return 0, 0, ErrShortHeader
		}
		v, used := Uvarint(b[off:])
		if used <= 0 {
			return 0, 0, ErrShortHeader
		}
		return max(int(v)-1, 0), off + used, nil
	}
	if len(b) < off+4 {
		return 0, 0, ErrShortHeader
	}
	n := int32(binary.BigEndian.Uint32(b[off:]))
	if n < -1 {
		return 0, 0, errBadProduceHead
	}
	return max(int(n), 0), off + 4, nil
}
