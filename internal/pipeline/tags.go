package pipeline

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kbin"
)

// errTagCount: a tagged-field section declares more tags than bytes
// follow (each tag takes at least two).
var errTagCount = errors.New("tagged fields: more tags declared than bytes follow")

// kmsg's decoders before v1.15.1 looped once per declared tagged field
// before noticing the input ended (a 10-byte frame declaring 2^32 tags
// cost about 45 s of CPU); kmsg now stops at the end of the input, and
// TestTagBombs holds it to that for every key and version. Header tags
// are read here, before kmsg sees the body, so this package bounds them
// itself.

// skipTags skips a tagged-field section, refusing a count the remaining
// bytes cannot hold.
func skipTags(r *kbin.Reader) error {
	n := r.Uvarint()
	if int64(n)*2 > int64(len(r.Src)) {
		return errTagCount
	}
	for ; n > 0; n-- {
		r.Uvarint() // tag key
		r.Span(int(r.Uvarint()))
	}
	return r.Complete()
}
