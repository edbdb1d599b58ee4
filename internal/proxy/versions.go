package proxy

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/rewrite"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// checkVersion keeps clients on versions the proxy can parse where it
// must parse. An ApiVersions request newer than kmsg knows is answered as
// Kafka does: a v0 UNSUPPORTED_VERSION response naming the versions we
// take, so the client retries lower. A rewritten key at a version we cannot
// decode closes the connection (a broker closes on unsupported versions).
func (s *Session) checkVersion(h wire.RequestHeader) (local []byte, err error) {
	max, known := wire.MaxVersion(h.Key)
	if !known || h.Version <= max {
		return nil, nil
	}
	if h.Key == 18 {
		resp := kmsg.NewApiVersionsResponse()
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: max}}
		frame := binary.BigEndian.AppendUint32(make([]byte, 4), uint32(h.CorrelationID))
		frame = resp.AppendTo(frame)
		putSize(frame, len(frame)-4)
		return frame, nil
	}
	if rewrite.Needed(h.Key, h.Version) {
		return nil, fmt.Errorf("%s v%d is newer than this proxy can rewrite (max v%d) and the client did not negotiate versions", keyName(h.Key), h.Version, max)
	}
	return nil, nil
}

func keyName(key int16) string { return kmsg.NameForKey(key) }
