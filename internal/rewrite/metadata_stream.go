package rewrite

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// ErrMalformedMetadata is returned (wrapped) by StreamMetadata for a body
// whose broker section cannot be read.
var ErrMalformedMetadata = errors.New("malformed metadata response")

// metadataReadAhead is how much StreamMetadata reads at a time while it
// looks for the end of the broker section.
const metadataReadAhead = 4 << 10

// StreamMetadata relays one Metadata response body of n bytes (the bytes
// after the response header; head is the header, size prefix included,
// already consumed from r) from r to w, rewriting only what carries
// addresses. At every version the broker list comes first, followed by
// the cluster id and the controller id; the topics, which make a response
// big (100 bytes and more per partition), come after and carry node ids
// only. So StreamMetadata reads up to the end of the controller id, decodes
// and maps that prefix with kmsg (the same rewrite as the whole-message
// path, on a MetadataResponse holding the prefix and an empty topic list),
// writes the new size prefix, header and prefix, and copies the rest
// through unread: first what r holds, then straight from raw (r's
// underlying reader, may be nil), in chunks of buf, calling progress (may
// be nil) before each. The cost no longer grows with the partition count.
//
// Memory is the broker section plus a read-ahead, whatever n is. The walk
// to the end of the controller id follows kmsg's field order and is
// checked against kmsg at every version; a body it cannot walk is refused
// as malformed (ErrMalformedMetadata, with the byte offset) before anything
// is written. On a write or copy error w may have received part of the
// response and r may be mid-frame: the caller must close both connections.
func StreamMetadata(w io.Writer, r *bufio.Reader, raw io.Reader, head []byte, n int, version int16, m Mapper, buf []byte, progress func()) error {
	var probe kmsg.MetadataResponse
	switch {
	case version < 0 || version > probe.MaxVersion():
		return fmt.Errorf("stream metadata v%d: %w", version, pipeline.ErrUnsupportedVersion)
	case n < 0:
		return fmt.Errorf("stream metadata: negative body size %d", n)
	case len(head) < 4:
		return fmt.Errorf("stream metadata: header of %d bytes", len(head))
	}
	hdr := append([]byte(nil), head...) // head may alias r's buffer
	mw := metadataWalk{r: r, n: n, flex: version >= 9}
	end, err := mw.prefixEnd(version)
	if err != nil {
		return err
	}
	prefix, err := mapMetadataPrefix(mw.pre[:end], version, m)
	if err != nil {
		return err
	}
	size := int64(len(hdr)-4) + int64(n-end+len(prefix))
	if size > math.MaxInt32 {
		return fmt.Errorf("stream metadata: rewritten response of %d bytes", size)
	}
	binary.BigEndian.PutUint32(hdr, uint32(size))
	out := append(append(hdr, prefix...), mw.pre[end:]...)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return relayRest(w, r, raw, n-len(mw.pre), buf, progress, "metadata topics")
}

// mapMetadataPrefix decodes the broker section with kmsg, maps its
// addresses and encodes it again; an unchanged section is returned as it
// came.
func mapMetadataPrefix(prefix []byte, version int16, m Mapper) ([]byte, error) {
	tail := metadataTail(version)
	whole := append(append(make([]byte, 0, len(prefix)+len(tail)), prefix...), tail...)
	resp := kmsg.MetadataResponse{Version: version}
	if err := resp.ReadFrom(whole); err != nil {
		return nil, fmt.Errorf("%w: broker section: %v", ErrMalformedMetadata, err)
	}
	changed, err := rewriteMetadata(&resp, m)
	if err != nil || !changed {
		return prefix, err
	}
	enc := resp.AppendTo(make([]byte, 0, len(whole)+64*len(resp.Brokers)))
	if !bytes.HasSuffix(enc, tail) {
		return nil, fmt.Errorf("stream metadata v%d: re-encoded broker section does not end as built", version)
	}
	return enc[:len(enc)-len(tail)], nil
}

// metadataTail is what follows the controller id in a Metadata response
// with no topics at version: an empty topic array, the cluster's
// authorized operations (v8-v10), the error code (v13+) and no tags
// (flexible versions), all zero.
func metadataTail(version int16) []byte {
	var t []byte
	if version >= 9 {
		t = append(t, 1) // compact array of length 0
	} else {
		t = append(t, 0, 0, 0, 0)
	}
	if version >= 8 && version <= 10 {
		t = append(t, 0, 0, 0, 0)
	}
	if version >= 13 {
		t = append(t, 0, 0)
	}
	if version >= 9 {
		t = append(t, 0)
	}
	return t
}

// metadataWalk reads a Metadata body from r into pre as far as it must.
type metadataWalk struct {
	r    *bufio.Reader
	n    int // body size
	flex bool
	pre  []byte // what was read of the body
	off  int    // the walk's position in pre
}

// prefixEnd walks to the end of the controller id, in kmsg's field order
// (MetadataResponse.readFrom), and returns that offset.
func (w *metadataWalk) prefixEnd(version int16) (int, error) {
	if version >= 3 {
		if err := w.skip(4, "throttle"); err != nil { // ThrottleMillis
			return 0, err
		}
	}
	brokers, err := w.arrayLen("brokers")
	if err != nil {
		return 0, err
	}
	for range brokers {
		if err := w.skip(4, "broker node id"); err != nil {
			return 0, err
		}
		if err := w.str(false, "broker host"); err != nil {
			return 0, err
		}
		if err := w.skip(4, "broker port"); err != nil {
			return 0, err
		}
		if version >= 1 {
			if err := w.str(true, "broker rack"); err != nil {
				return 0, err
			}
		}
		if w.flex {
			if err := w.tags("broker tags"); err != nil {
				return 0, err
			}
		}
	}
	if version >= 2 {
		if err := w.str(true, "cluster id"); err != nil {
			return 0, err
		}
	}
	if version >= 1 {
		if err := w.skip(4, "controller id"); err != nil {
			return 0, err
		}
	}
	return w.off, nil
}

// need makes k more bytes from the walk's position available in pre.
func (w *metadataWalk) need(k int, what string) error {
	if k > w.n-w.off {
		return w.malformed(what, fmt.Sprintf("%d bytes, %d left", k, w.n-w.off))
	}
	if short := w.off + k - len(w.pre); short > 0 {
		grow := min(max(short, metadataReadAhead), w.n-len(w.pre))
		w.pre = append(w.pre, make([]byte, grow)...)
		if _, err := io.ReadFull(w.r, w.pre[len(w.pre)-grow:]); err != nil {
			return fmt.Errorf("read metadata %s: %w", what, err)
		}
	}
	return nil
}

func (w *metadataWalk) skip(k int, what string) error {
	if err := w.need(k, what); err != nil {
		return err
	}
	w.off += k
	return nil
}

// uvarint reads an unsigned varint of at most 32 bits, as Kafka's.
func (w *metadataWalk) uvarint(what string) (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if err := w.need(1, what); err != nil {
			return 0, err
		}
		c := w.pre[w.off]
		w.off++
		if i == 4 && c > 0x0f {
			return 0, w.malformed(what, "varint over 32 bits")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, w.malformed(what, "varint over 32 bits")
}

func (w *metadataWalk) int16(what string) (int16, error) {
	if err := w.need(2, what); err != nil {
		return 0, err
	}
	v := int16(binary.BigEndian.Uint16(w.pre[w.off:]))
	w.off += 2
	return v, nil
}

// arrayLen reads a non-nullable array's length.
func (w *metadataWalk) arrayLen(what string) (int, error) {
	if w.flex {
		v, err := w.uvarint(what)
		if err != nil {
			return 0, err
		}
		if v == 0 {
			return 0, w.malformed(what, "null array")
		}
		return int(v - 1), nil
	}
	if err := w.need(4, what); err != nil {
		return 0, err
	}
	v := int32(binary.BigEndian.Uint32(w.pre[w.off:]))
	w.off += 4
	if v < 0 {
		return 0, w.malformed(what, "null array")
	}
	return int(v), nil
}

// str skips a string (compact on flexible versions); null only if nullable.
func (w *metadataWalk) str(nullable bool, what string) error {
	var k int
	if w.flex {
		v, err := w.uvarint(what)
		if err != nil {
			return err
		}
		if v == 0 {
			if !nullable {
				return w.malformed(what, "null string")
			}
			return nil
		}
		k = int(v - 1)
	} else {
		v, err := w.int16(what)
		if err != nil {
			return err
		}
		if v < 0 {
			if !nullable || v != -1 {
				return w.malformed(what, "null string")
			}
			return nil
		}
		k = int(v)
	}
	return w.skip(k, what)
}

// tags skips a tagged-field section.
func (w *metadataWalk) tags(what string) error {
	count, err := w.uvarint(what)
	if err != nil {
		return err
	}
	for range count {
		if _, err := w.uvarint(what); err != nil {
			return err
		}
		size, err := w.uvarint(what)
		if err != nil {
			return err
		}
		if err := w.skip(int(size), what); err != nil {
			return err
		}
	}
	return nil
}

func (w *metadataWalk) malformed(what, detail string) error {
	return fmt.Errorf("%w: %s at byte %d: %s", ErrMalformedMetadata, what, w.off, detail)
}
