package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// rewriteDescribeCluster maps DescribeClusterResponse.Brokers, which admin
// clients use like Metadata's broker list. With EndpointType controller
// (v1+) the entries are controllers; they are mapped the same way, and a
// mapper that does not know them fails the connection rather than leak
// them.
func rewriteDescribeCluster(r kmsg.Response, m Mapper) (bool, error) {
	resp := r.(*kmsg.DescribeClusterResponse)
	return mapEach(m, resp.Brokers, func(b *kmsg.DescribeClusterResponseBroker) (int32, *string, *int32) {
		return b.NodeID, &b.Host, &b.Port
	})
}
