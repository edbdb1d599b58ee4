package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// rewriteShareFetch maps ShareFetchResponse.NodeEndpoints (KIP-932 share
// groups): the leaders' addresses sent along with leadership changes, as
// KIP-951 does for Fetch.
func rewriteShareFetch(r kmsg.Response, m Mapper) (bool, error) {
	resp := r.(*kmsg.ShareFetchResponse)
	return mapEach(m, resp.NodeEndpoints, func(e *kmsg.ShareFetchResponseNodeEndpoint) (int32, *string, *int32) {
		return e.NodeID, &e.Host, &e.Port
	})
}
