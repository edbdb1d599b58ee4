package wire

import "errors"

// ErrShortTags means a tagged-field section runs past the bytes at hand.
var ErrShortTags = errors.New("tagged fields run past the bytes read")

// SkipTags skips a tagged-field section (of a request or response header)
// starting at off, returning where it ends; ErrShortTags if that is beyond
// b, so callers may slice b there.
func SkipTags(b []byte, off int) (int, error) {
	if off > len(b) {
		return 0, ErrShortTags
	}
	count, used := Uvarint(b[off:])
	if used <= 0 {
		return 0, ErrShortTags
	}
	off += used
	for i := uint32(0); i < count; i++ {
		for j := 0; j < 2; j++ { // tag, then size
			if off > len(b) {
				return 0, ErrShortTags
			}
			v, used := Uvarint(b[off:])
			if used <= 0 {
				return 0, ErrShortTags
			}
			off += used
			if j == 1 {
				off += int(v)
			}
		}
	}
	if off > len(b) {
		return 0, ErrShortTags
	}
	return off, nil
}
