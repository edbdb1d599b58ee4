package proxy

import (
	"fmt"

	"github.com/kafka-proxy/kafka-proxy/internal/rewrite"
)

// relayFetch passes a Fetch v16+ response through without buffering it:
// its KIP-951 node endpoints sit in the body's last tagged fields, after
// all record data, so rewrite.StreamFetch walks the body with a small
// buffer, streams the records and rewrites the endpoints in place (the
// length, already announced by the size prefix, never changes).
func (s *Session) relayFetch(e inflight, total int) error {
	head, err := s.upR.Peek(min(total, s.upR.Size()))
	if err != nil {
		return fmt.Errorf("read fetch response: %w", err)
	}
	headerLen, err := skipTags(head, 8)
	if err != nil {
		return fmt.Errorf("fetch response header: %w", err)
	}
	_, _ = s.upR.Discard(headerLen) // head stays valid until the next read
	bufp := s.opts.Buffers.Get()
	defer s.opts.Buffers.Put(bufp)
	if err := rewrite.StreamFetchProgress(s.client, s.upR, s.up.Conn, head[:headerLen], total-headerLen, e.version, s.opts.Mapper, *bufp, s.extendReadFn); err != nil {
		return fmt.Errorf("relay fetch v%d response: %w", e.version, err)
	}
	s.metrics.Response(total)
	return nil
}
