package rewrite

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rewriteAPIVersions clamps every advertised max version to the highest the
// proxy can parse (MaxRewritableVersion), so a client never negotiates a
// version whose addresses the proxy could not rewrite or whose requests the
// policy could not read. Keys kmsg does not know pass unchanged: the proxy
// neither rewrites nor reads them.
//
// If a broker's min version for a key is above what kmsg can parse, the
// entry is left as the broker sent it: clamping would advertise max < min,
// an invalid range. A client using that key then talks a version the proxy
// cannot parse; for a key that needs a rewrite, the Addresses stage
// refuses such requests (the connection closes) rather than leak an
// address. Upgrading kmsg is the fix. (An UNSUPPORTED_VERSION answer,
// which brokers encode as v0, arrives here decoded as v0.)
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
