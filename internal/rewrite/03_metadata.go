package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// rewriteMetadata maps MetadataResponse.Brokers, the list every client
// bootstraps from. ControllerID and partition leaders are node ids, which
// the proxy keeps as they are.
func rewriteMetadata(r kmsg.Response, m Mapper) (bool, error) {
	resp := r.(*kmsg.MetadataResponse)
	return mapEach(m, resp.Brokers, func(b *kmsg.MetadataResponseBroker) (int32, *string, *int32) {
		return b.NodeID, &b.Host, &b.Port
	})
}
