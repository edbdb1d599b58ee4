package rewrite

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	apiVersionsKey = 18
	// errUnsupportedVersion is Kafka's UNSUPPORTED_VERSION error code.
	errUnsupportedVersion = 35
)

// apiVersionsUnsupported reports whether an ApiVersions body is the
// broker's UNSUPPORTED_VERSION answer. A broker sends that answer encoded as
// v0 whatever version was asked for, so decoding it at the request's
// version would misparse; it lists the broker's own ApiVersions range only,
// which the client needs to retry. ErrorCode is the first field in every
// version, so two bytes tell.
func apiVersionsUnsupported(body []byte) bool {
	return len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == errUnsupportedVersion
}

// rewriteAPIVersions clamps every advertised max version to the highest the
// proxy can parse (MaxRewritableVersion), so a client never negotiates a
// version whose addresses the proxy could not rewrite or whose requests the
// policy could not read. Keys kmsg does not know pass unchanged: the proxy
// neither rewrites nor reads them.
//
// If a broker's min version for a key is above what kmsg can parse, the
// entry is left as the broker sent it: clamping would advertise max < min,
// an invalid range. A client using that key then talks a version the proxy
// cannot parse; for a key that needs a rewrite, Response refuses it with
// ErrUnsupportedVersion (the connection closes) rather than leak an
// address. Upgrading kmsg is the fix.
func rewriteAPIVersions(r kmsg.Response, _ Mapper) (bool, error) {
	resp := r.(*kmsg.ApiVersionsResponse)
	changed := false
	for i := range resp.ApiKeys {
		k := &resp.ApiKeys[i]
		limit, ok := MaxRewritableVersion(k.ApiKey)
		if !ok || k.MaxVersion <= limit || k.MinVersion > limit {
			continue
		}
		k.MaxVersion = limit
		changed = true
	}
	return changed, nil
}
