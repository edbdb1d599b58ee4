package rewrite

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// ErrMalformedFetch is returned (wrapped) by StreamFetch for a body that
// does not follow the Fetch response layout: a length past the end of the
// body, a null where Kafka allows none, trailing bytes, a bad uvarint.
var ErrMalformedFetch = errors.New("malformed fetch response")

const (
	// fetchStreamMinVersion is the first Fetch version with node endpoints
	// (KIP-951, top-level tag 0). v13–v18 share one layout (kmsg v1.15's
	// FetchResponse.readFrom); v16 added tag 0.
	fetchStreamMinVersion = 16
	// fetchStreamMaxVersion is the newest version whose layout the walk was
	// checked against. A newer one is refused, not guessed at: when kmsg
	// learns v19, a test fails until someone checks its layout here.
	fetchStreamMaxVersion = 18
	nodeEndpointsTag      = 0

	// padTagA and padTagB number the padding tagged fields StreamFetch
	// appends to the top-level tag section. They are far above any tag
	// Kafka will define, so no reader mistakes a pad for a field, and
	// they take three bytes as uvarints (2^14 <= tag < 2^21), so a pad
	// costs at least four bytes: tag, size 0.
	padTagA = 1<<21 - 2
	padTagB = 1<<21 - 1

	// maxEndpointsSize bounds the node-endpoints value StreamFetch reads
	// into memory (about 15000 brokers). A larger one is skipped unread
	// and dropped like endpoints that do not fit: never passed on.
	maxEndpointsSize = 1 << 20

	// minStreamBuf is the smallest buf StreamFetch uses as given; below
	// that it allocates its own.
	minStreamBuf = 1 << 10
)

// Streamed reports whether a response of key at version is relayed by
// streaming rather than decoded whole: Fetch v16+, whose node endpoints
// follow the record data (StreamFetchProgress), and Metadata at every
// version, whose topics follow the brokers (StreamMetadata). (The
// whole-message rewrite still handles those versions, for a chain in
// which another stage reads them, and the tests use it as the oracle.)
func Streamed(key, version int16) bool {
	return key == kmsg.Fetch.Int16() && version >= fetchStreamMinVersion || key == kmsg.Metadata.Int16()
}

// StreamFetch relays one Fetch response body of n bytes (v16+, the bytes
// after the response header) from r to w without holding it in memory, and
// maps the KIP-951 node endpoints it carries with m.
//
// Kafka frames are length-prefixed and the proxy has sent the prefix before
// the body, so the body's length never changes: StreamFetch writes exactly n
// bytes on success. It walks the layout with a small scratch (carved from
// buf), copying every field through as read; record data and other large
// values go through in bounded chunks: first what r has buffered, then
// straight from raw, r's underlying reader (so wire.CopyN can splice
// TCP-to-TCP). raw may be nil to read everything through r. buf is the
// scratch and copy buffer (32 KiB is a good size; below 1 KiB StreamFetch
// allocates one). Memory is O(len(buf) + node endpoints), whatever n is.
//
// Node endpoints are top-level tag 0, the first tag of the section that ends
// the body. StreamFetch reads that value (bounded by maxEndpointsSize),
// maps every endpoint with m, and re-encodes it; rack and per-endpoint tags
// pass as they were. If nothing changed, the section passes byte for byte.
// Otherwise the section's head (tag count plus the tag-0 entry, L bytes)
// is rebuilt to exactly L bytes, padding with unknown tagged fields, which
// every reader skips (KIP-482); pads are numbered padTagA and padTagB,
// written after the broker's other tags to keep tags ascending, with zero
// bytes as value. In order of preference:
//
//  1. keep the mapped endpoints, no pad: they have the same length;
//  2. keep them, tag count +1, one pad taking up the slack;
//  3. keep them, tag count +2, a minimal pad and one for the rest (a single
//     pad cannot be every size: tag+size+value skips totals where the size
//     uvarint grows, e.g. 3+129);
//  4. drop the endpoints: tag 0 is replaced by one pad (or two) of its
//     length. This happens when the mapped endpoints are longer than the
//     originals, or shorter by less than a pad (1–3 bytes), or when the
//     value exceeds maxEndpointsSize.
//
// Dropping is safe: KIP-951 endpoints are a shortcut; a client without them
// refreshes Metadata (which the proxy rewrites), the pre-KIP-951 behaviour,
// at the cost of one round trip. A broker address is never passed on. Non-
// canonical (overlong) uvarints are never written, as some readers might
// reject them.
//
// Any other top-level tag passes as is. A tag-0 entry that is not the first
// tag (out of order or repeated) is refused as malformed, as is a tag at or
// above padTagA after a kept or dropped tag 0, since the pads could no longer
// follow it in order. The walk is strict where Kafka is (no null for
// non-nullable arrays, no uvarint over 32 bits, no byte after the last
// tag), so the proxy and the client cannot read one body two ways.
//
// Errors wrap ErrMalformedFetch (with the byte offset), the mapper's error
// (naming the broker), ErrUnsupportedVersion for a version kmsg does not
// know or the walk was not checked against (above v18), or the read/write
// error. On error w may have received part of the body and r may be
// mid-frame: the caller must close both connections.
func StreamFetch(w io.Writer, r *bufio.Reader, raw io.Reader, n int, version int16, m Mapper, buf []byte) error {
	return StreamFetchProgress(w, r, raw, nil, n, version, m, buf, nil)
}

// StreamFetchProgress is StreamFetch writing head (the response header,
// which the caller has already consumed from r) before the body, in the
// same write as the first fields, and calling progress before each chunk
// it copies from raw (see wire.CopyNProgress), so the caller can extend a
// read deadline while data flows to a slow client. head is copied before
// r is read again, so it may alias r's buffer.
func StreamFetchProgress(w io.Writer, r *bufio.Reader, raw io.Reader, head []byte, n int, version int16, m Mapper, buf []byte, progress func()) error {
	var fr kmsg.FetchResponse
	maxV := min(fr.MaxVersion(), fetchStreamMaxVersion)
	switch {
	case version < fetchStreamMinVersion:
		return fmt.Errorf("stream fetch v%d: only v%d+ carries node endpoints", version, fetchStreamMinVersion)
	case version > maxV:
		return fmt.Errorf("stream fetch: walks up to v%d: %w", maxV, pipeline.ErrUnsupportedVersion)
	case n < 0:
		return fmt.Errorf("stream fetch: negative body size %d", n)
	}
	if len(buf) < minStreamBuf {
		buf = make([]byte, 32<<10)
	}
	scratch := min(len(buf)/4, 4<<10)
	s := fetchStream{w: w, r: r, raw: raw, m: m, n: n, rem: n, out: buf[:0:scratch], copyBuf: buf[scratch:], progress: progress}
	if err := s.write(head); err != nil {
		return err
	}
	if err := s.body(); err != nil {
		return err
	}
	return s.flush()
}

// fetchStream is one StreamFetch call's state.
type fetchStream struct {
	progress func() // before each chunk copied from raw; may be nil
	w        io.Writer
	r        *bufio.Reader
	raw      io.Reader
	m        Mapper
	n, rem   int    // body size, and bytes of it not yet read
	out      []byte // fields read and not yet written; never grows past cap
	copyBuf  []byte // chunks for large values
}

// Minimum encoded sizes of array elements, to bound counts by what is left.
const (
	fetchFix     = 4 + 2 + 4         // throttle, error code, session id
	topicFix     = 16                // topic id
	partitionFix = 4 + 2 + 8 + 8 + 8 // partition .. log start offset
	abortedFix   = 8 + 8             // producer id, first offset
	replicaFix   = 4                 // preferred read replica
	minTopic     = topicFix + 1 + 1  // id, empty partitions, tags
	minPartition = partitionFix + 1 + replicaFix + 1 + 1
	minAborted   = abortedFix + 1    // + tags
	minEndpoint  = 4 + 1 + 4 + 1 + 1 // node id, host, port, rack, tags
	minTag       = 2                 // tag, size 0
	maxHead      = 5 + 5 + 5         // tag count, tag, size
	smallCopyDiv = 4                 // values up to cap(out)/4 go through out
)

func (s *fetchStream) body() error {
	if err := s.fixed(fetchFix, "response fields"); err != nil {
		return err
	}
	topics, err := s.arrayLen("topics", minTopic, false)
	if err != nil {
		return err
	}
	for range topics {
		if err := s.fixed(topicFix, "topic id"); err != nil {
			return err
		}
		parts, err := s.arrayLen("partitions", minPartition, false)
		if err != nil {
			return err
		}
		for range parts {
			if err := s.partition(); err != nil {
				return err
			}
		}
		if err := s.tags("topic tags"); err != nil {
			return err
		}
	}
	return s.topTags()
}

func (s *fetchStream) partition() error {
	if err := s.fixed(partitionFix, "partition fields"); err != nil {
		return err
	}
	aborted, err := s.arrayLen("aborted transactions", minAborted, true)
	if err != nil {
		return err
	}
	for range aborted {
		if err := s.fixed(abortedFix, "aborted transaction"); err != nil {
			return err
		}
		if err := s.tags("aborted transaction tags"); err != nil {
			return err
		}
	}
	if err := s.fixed(replicaFix, "preferred read replica"); err != nil {
		return err
	}
	l, err := s.uvarint("records length")
	if err != nil {
		return err
	}
	if l > 0 { // 0 is null
		if err := s.copyN(uint64(l-1), "records"); err != nil {
			return err
		}
	}
	return s.tags("partition tags")
}

// tags copies a tagged-field section verbatim.
func (s *fetchStream) tags(what string) error {
	count, err := s.tagCount(what)
	if err != nil {
		return err
	}
	for range count {
		if _, err := s.uvarint(what); err != nil {
			return err
		}
		if err := s.tagValue(what); err != nil {
			return err
		}
	}
	return nil
}

// tagValue copies one tagged field's size and value.
func (s *fetchStream) tagValue(what string) error {
	size, err := s.uvarint(what)
	if err != nil {
		return err
	}
	return s.copyN(uint64(size), what)
}

func (s *fetchStream) tagCount(what string) (uint32, error) {
	c, err := s.uvarint(what)
	if err != nil {
		return 0, err
	}
	if uint64(c)*minTag > uint64(s.rem) {
		return 0, s.malformed(what, fmt.Sprintf("%d tags do not fit in %d bytes", c, s.rem))
	}
	return c, nil
}

// arrayLen reads a compact array length. Every element takes at least
// minElem bytes, which bounds the count (and so every loop) by the bytes
// left. A null (0) is an empty array if nullable, else malformed.
func (s *fetchStream) arrayLen(what string, minElem int, nullable bool) (int, error) {
	v, err := s.uvarint(what)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		if nullable {
			return 0, nil
		}
		return 0, s.malformed(what, "null array")
	}
	l := uint64(v - 1)
	if l*uint64(minElem) > uint64(s.rem) {
		return 0, s.malformed(what, fmt.Sprintf("%d elements do not fit in %d bytes", l, s.rem))
	}
	return int(l), nil
}

// topTags handles the top-level tag section that ends the body; see
// StreamFetch for the rules.
func (s *fetchStream) topTags() error {
	if err := s.ensure(maxHead); err != nil {
		return err
	}
	at := len(s.out)
	count, err := s.tagCount("response tags")
	if err != nil {
		return err
	}
	if count == 0 {
		return s.end()
	}
	tag, err := s.uvarint("response tag")
	if err != nil {
		return err
	}
	if tag != nodeEndpointsTag {
		if err := s.tagValue("response tag"); err != nil {
			return err
		}
		return s.restTags(count-1, tagPlan{})
	}
	size, err := s.uvarint("node endpoints")
	if err != nil {
		return err
	}
	if uint64(size) > uint64(s.rem) {
		return s.malformed("node endpoints", fmt.Sprintf("%d bytes, %d left", size, s.rem))
	}
	var head [maxHead]byte
	hl := copy(head[:], s.out[at:])
	s.out = s.out[:at]
	oldLen := hl + int(size)

	newLen := -1 // dropped
	var val []byte
	changed := false
	if size <= maxEndpointsSize {
		val = make([]byte, size)
		if _, err := io.ReadFull(s.r, val); err != nil {
			return s.readErr("node endpoints", err)
		}
		s.rem -= int(size)
		if val, changed, err = mapEndpoints(val, s.m); err != nil {
			return fmt.Errorf("node endpoints: %w", err)
		}
		newLen = len(val)
	} else {
		if _, err := s.r.Discard(int(size)); err != nil {
			return s.readErr("node endpoints", err)
		}
		s.rem -= int(size)
		changed = true
	}
	if !changed {
		if err := s.write(head[:hl]); err != nil {
			return err
		}
		if err := s.write(val); err != nil {
			return err
		}
		return s.restTags(count-1, tagPlan{})
	}
	plan, ok := planTagSection(count, oldLen, newLen)
	if !ok {
		// Unreachable for any body that passed the checks above; refuse
		// rather than pass the endpoints on.
		return fmt.Errorf("node endpoints: no padding fits %d bytes", oldLen)
	}
	if err := s.appendUvarint(plan.count); err != nil {
		return err
	}
	if plan.keep {
		if err := s.appendUvarint(nodeEndpointsTag); err != nil {
			return err
		}
		if err := s.appendUvarint(uint32(len(val))); err != nil {
			return err
		}
		if err := s.write(val); err != nil {
			return err
		}
	}
	return s.restTags(count-1, plan)
}

// restTags copies the k top-level tags after the first, then writes the
// plan's pads and checks that the body ended.
func (s *fetchStream) restTags(k uint32, plan tagPlan) error {
	for range k {
		tag, err := s.uvarint("response tag")
		if err != nil {
			return err
		}
		if tag == nodeEndpointsTag {
			return s.malformed("response tags", "node endpoints not the first tag")
		}
		if plan.npads > 0 && tag >= padTagA {
			return s.malformed("response tags", fmt.Sprintf("tag %d at or above the padding tags", tag))
		}
		if err := s.tagValue("response tag"); err != nil {
			return err
		}
	}
	for i := range plan.npads {
		if err := s.appendUvarint(padTag(i)); err != nil {
			return err
		}
		if err := s.appendUvarint(uint32(plan.pads[i])); err != nil {
			return err
		}
		if err := s.appendZeros(plan.pads[i]); err != nil {
			return err
		}
	}
	return s.end()
}

func (s *fetchStream) end() error {
	if s.rem != 0 {
		return s.malformed("response", fmt.Sprintf("%d bytes after the last tag", s.rem))
	}
	return nil
}
