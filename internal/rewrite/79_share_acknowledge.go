package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// rewriteShareAcknowledge maps ShareAcknowledgeResponse.NodeEndpoints
// (KIP-932), as for ShareFetch.
func rewriteShareAcknowledge(r kmsg.Response, m Mapper) (bool, error) {
	resp := r.(*kmsg.ShareAcknowledgeResponse)
	return mapEach(m, resp.NodeEndpoints, func(e *kmsg.ShareAcknowledgeResponseNodeEndpoint) (int32, *string, *int32) {
		return e.NodeID, &e.Host, &e.Port
	})
}
