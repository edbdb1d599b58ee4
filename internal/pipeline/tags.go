package pipeline

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errTagCount: a tagged-field section declares more tags than bytes
// follow (each tag takes at least two).
var errTagCount = errors.New("tagged fields: more tags declared than bytes follow")

// errUncheckedVersion: checkBodyTags does not know this version's layout
// (kmsg learnt a newer one; TestBodyTagsEveryVersion says so).
var errUncheckedVersion = errors.New("the proxy does not know this version's layout, so it does not decode it")

// kmsg's decoders read a tag count and loop that many times before they
// notice the input ran out: a 10-byte SaslAuthenticate v2 that declares
// 2^32 tags costs about 45 s of CPU. The proxy therefore checks every tag
// count of a flexible message before kmsg decodes it. Header tags are
// skipped here (skipTags); for request bodies checkBodyTags knows the
// layout of the requests the proxy decodes from clients before they
// authenticated: flat messages whose one tag section ends the body. Other
// requests pass unchecked: a stage that decodes them (authorization) needs
// a general check first.

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

// checkBodyTags checks the tag counts of a request body (after the
// header) before kmsg decodes it.
func checkBodyTags(key, version int16, body []byte) error {
	r := kbin.Reader{Src: body}
	switch kmsg.Key(key) {
	case kmsg.SASLHandshake:
		return nil // never flexible
	case kmsg.SASLAuthenticate: // v2: auth_bytes, tags
		if version > 2 {
			return errUncheckedVersion
		}
		r.CompactBytes()
	case kmsg.ApiVersions: // v3+: client_software_name, client_software_version, v5+: cluster_id, node_id; tags
		if version > 5 {
			return errUncheckedVersion
		}
		r.CompactString()
		r.CompactString()
		if version >= 5 {
			r.CompactNullableString()
			r.Int32()
		}
	default:
		return nil
	}
	if err := r.Complete(); err != nil {
		return err
	}
	n := r.Uvarint()
	if int64(n)*2 > int64(len(r.Src)) {
		return errTagCount
	}
	return nil
}
