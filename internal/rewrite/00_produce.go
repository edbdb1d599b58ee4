package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// rewriteProduce maps ProduceResponse.Brokers (KIP-951, tagged field, v10+):
// a broker answering NOT_LEADER_OR_FOLLOWER names the new leader's address
// so the client can skip a Metadata round trip, and would skip the proxy.
func rewriteProduce(r kmsg.Response, m Mapper) (bool, error) {
	resp := r.(*kmsg.ProduceResponse)
	return mapEach(m, resp.Brokers, func(b *kmsg.ProduceResponseBroker) (int32, *string, *int32) {
		return b.NodeID, &b.Host, &b.Port
	})
}
