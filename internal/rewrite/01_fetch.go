package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// rewriteFetch maps FetchResponse.Brokers (KIP-951, tagged field, v16+): the
// new leaders' addresses sent along with NOT_LEADER_OR_FOLLOWER /
// FENCED_LEADER_EPOCH. Record batches are not touched: they alias the body.
func rewriteFetch(r kmsg.Response, m Mapper) (bool, error) {
	resp := r.(*kmsg.FetchResponse)
	return mapEach(m, resp.Brokers, func(b *kmsg.FetchResponseBroker) (int32, *string, *int32) {
		return b.NodeID, &b.Host, &b.Port
	})
}
