package rewrite

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
)

// padTag is the tag number of the i-th pad (0 or 1), in ascending order.
func padTag(i int) uint32 {
	if i == 0 {
		return padTagA
	}
	return padTagB
}

// tagPlan is how the head of the top-level tag section is rebuilt: the new
// tag count, whether tag 0 is kept, and the value sizes of the pads.
type tagPlan struct {
	count uint32
	keep  bool
	pads  [2]int
	npads int
}

// planTagSection finds a tag section head of exactly oldLen bytes (tag
// count + tag-0 entry as the broker sent them) for count tags, keeping the
// mapped endpoints of newLen bytes if it can (newLen < 0: drop them).
func planTagSection(count uint32, oldLen, newLen int) (tagPlan, bool) {
	if newLen >= 0 {
		entry := 1 + kbin.UvarintLen(uint32(newLen)) + newLen
		for k := range uint32(3) {
			if pads, ok := fitPads(oldLen-kbin.UvarintLen(count+k)-entry, int(k)); ok {
				return tagPlan{count: count + k, keep: true, pads: pads, npads: int(k)}, true
			}
		}
	}
	for k := uint32(1); k <= 2; k++ {
		if pads, ok := fitPads(oldLen-kbin.UvarintLen(count-1+k), int(k)); ok {
			return tagPlan{count: count - 1 + k, pads: pads, npads: int(k)}, true
		}
	}
	return tagPlan{}, false
}

// fitPads returns the value sizes of k pads (tags padTagA, padTagB) taking
// exactly budget bytes; with two, the first is minimal.
func fitPads(budget, k int) ([2]int, bool) {
	switch k {
	case 0:
		return [2]int{}, budget == 0
	case 1:
		s, ok := padSize(padTagA, budget)
		return [2]int{s}, ok
	case 2:
		s, ok := padSize(padTagB, budget-padLen(padTagA, 0))
		return [2]int{0, s}, ok
	}
	return [2]int{}, false
}

// padSize is the value size making a pad with tag exactly total bytes.
func padSize(tag uint32, total int) (int, bool) {
	for w := 1; w <= 5; w++ {
		s := total - kbin.UvarintLen(tag) - w
		if s >= 0 && s <= int(^uint32(0)>>1) && kbin.UvarintLen(uint32(s)) == w {
			return s, true
		}
	}
	return 0, false
}

func padLen(tag uint32, size int) int {
	return kbin.UvarintLen(tag) + kbin.UvarintLen(uint32(size)) + size
}

// mapEndpoints maps every endpoint in a node-endpoints value (compact array
// of {node_id int32, host compact string, port int32, rack compact nullable
// string, tags}) and re-encodes it; rack and tags are kept byte for byte.
// The value must be exactly one such array. If no address changed it
// returns val itself.
func mapEndpoints(val []byte, m Mapper) ([]byte, bool, error) {
	b := kbin.Reader{Src: val}
	off := func() int { return len(val) - len(b.Src) }
	l := b.Uvarint()
	if !b.Ok() || l == 0 {
		return nil, false, fmt.Errorf("%w: node endpoints: bad or null array length", ErrMalformedFetch)
	}
	count := uint64(l - 1)
	if count*minEndpoint > uint64(len(b.Src)) {
		return nil, false, fmt.Errorf("%w: node endpoints: %d do not fit in %d bytes", ErrMalformedFetch, count, len(b.Src))
	}
	out := make([]byte, 0, len(val)+64)
	out = append(out, val[:off()]...)
	changed := false
	for range count {
		id := b.Int32()
		hl := b.Uvarint()
		host := b.Span(int(hl) - 1) // 0 (null) fails: Span(-1)
		port := b.Int32()
		restAt := off()
		if rl := b.Uvarint(); rl > 0 {
			b.Span(int(rl) - 1)
		}
		for tags := b.Uvarint(); tags > 0 && b.Ok(); tags-- {
			b.Uvarint()
			b.Span(int(b.Uvarint()))
		}
		if !b.Ok() {
			return nil, false, fmt.Errorf("%w: node endpoints: truncated endpoint", ErrMalformedFetch)
		}
		h, p := string(host), port
		c, err := mapAddr(m, id, &h, &p)
		if err != nil {
			return nil, false, err
		}
		changed = changed || c
		out = kbin.AppendInt32(out, id)
		out = kbin.AppendCompactString(out, h)
		out = kbin.AppendInt32(out, p)
		out = append(out, val[restAt:off()]...)
	}
	if len(b.Src) != 0 {
		return nil, false, fmt.Errorf("%w: node endpoints: %d bytes after the last endpoint", ErrMalformedFetch, len(b.Src))
	}
	if !changed {
		return val, false, nil
	}
	return out, true, nil
}
