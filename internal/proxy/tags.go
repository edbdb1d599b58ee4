package proxy

import (
	"errors"

	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// errShortTags means a tagged-field section runs past the bytes at hand.
var errShortTags = errors.New("tagged fields run past the bytes read")

// skipTags skips a tagged-field section (of a request or response header)
// starting at off, returning where it ends; errShortTags if that is beyond
// b, so callers may slice b there.
func skipTags(b []byte, off int) (int, error) {
	if off > len(b) {
		return 0, errShortTags
	}
	count, used := wire.Uvarint(b[off:])
	if used <= 0 {
		return 0, errShortTags
	}
	off += used
	for i := uint32(0); i < count; i++ {
		for j := 0; j < 2; j++ { // tag, then size
			if off > len(b) {
				return 0, errShortTags
			}
			v, used := wire.Uvarint(b[off:])
			if used <= 0 {
				return 0, errShortTags
			}
			off += used
			if j == 1 {
				off += int(v)
			}
		}
	}
	if off > len(b) {
		return 0, errShortTags
	}
	return off, nil
}
