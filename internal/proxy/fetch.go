package proxy

import (
	"fmt"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// relayStreamed passes a response through a streaming stage without
// buffering it. For Fetch v16+ the KIP-951 node endpoints sit in the body's
// last tagged fields, after all record data, so the address stage walks the
// body with a small buffer, streams the records and rewrites the endpoints
// in place (the length, already announced by the size prefix, never
// changes). For Metadata the brokers come first: the stage rewrites them
// and the size prefix, then copies the topics through.
func (s *Session) relayStreamed(st pipeline.StreamingStage, e inflight, total int) error {
	head, err := s.upR.Peek(min(total, s.upR.Size()))
	if err != nil {
		return fmt.Errorf("read %s response: %w", keyName(e.key), err)
	}
	headerLen := 8
	if flexible, _ := wire.ResponseFlexible(e.key, e.version); flexible {
		if headerLen, err = wire.SkipTags(head, 8); err != nil {
			return fmt.Errorf("%s response header: %w", keyName(e.key), err)
		}
	}
	_, _ = s.upR.Discard(headerLen) // head stays valid until the next read
	bufp := s.opts.Buffers.Get()
	defer s.opts.Buffers.Put(bufp)
	if err := st.Stream(s.client, s.upR, s.up.Conn, head[:headerLen], total-headerLen, e.key, e.version, *bufp, s.extendReadFn); err != nil {
		return fmt.Errorf("relay %s v%d response: %w", keyName(e.key), e.version, err)
	}
	s.metrics.Response(total)
	return nil
}
