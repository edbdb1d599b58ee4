package policy

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// A forbidden key never reaches the broker, at any version: answered with
// the broker's authorization errors where the answer has room for them,
// closed otherwise; other keys keep the splice path.
func TestForbiddenKeys(t *testing.T) {
	c, err := pipeline.NewChain(ForbiddenKeys([]int{int(kmsg.DeleteTopics), int(kmsg.CreateACLs), int(kmsg.ApiVersions)}))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []kmsg.Key{kmsg.DeleteTopics, kmsg.CreateACLs, kmsg.ApiVersions} {
		for v := int16(0); v <= kmsg.RequestForKey(int16(key)).MaxVersion()+1; v++ {
			r := c.Route(int16(key), v)
			if !r.Request() || !r.RequestBody() || r.Response() {
				t.Fatalf("%s v%d: route %+v, want a request stage reading the body", key.Name(), v, r)
			}
			req := kmsg.RequestForKey(int16(key))
			switch rq := req.(type) {
			case *kmsg.DeleteTopicsRequest:
				rq.TopicNames = []string{"orders"}
				rq.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("orders")}}
			case *kmsg.CreateACLsRequest:
				rq.Creations = []kmsg.CreateACLsRequestCreation{kmsg.NewCreateACLsRequestCreation()}
			}
			known := v <= req.MaxVersion()
			req.SetVersion(min(v, req.MaxVersion())) // an unknown version is framed as the newest, labelled v
			frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 7)
			ex := pipeline.NewExchange(&pipeline.Client{}, int16(key), v, 7, frame)
			verdict := c.OnRequest(r, ex)
			switch {
			case !known || key == kmsg.ApiVersions:
				if verdict.Action != pipeline.Close || verdict.Err == nil || !strings.Contains(verdict.Err.Error(), key.Name()) {
					t.Fatalf("%s v%d: verdict %+v, want Close naming the key", key.Name(), v, verdict)
				}
			default:
				if verdict.Action != pipeline.Answer {
					t.Fatalf("%s v%d: verdict %+v, want an answer", key.Name(), v, verdict)
				}
				b := pipeline.AppendResponse(nil, verdict.Response, 7)
				_, resp, err := pipeline.DecodeResponseFrame(int16(key), v, b[4:])
				if err != nil {
					t.Fatalf("%s v%d: answer does not decode: %v", key.Name(), v, err)
				}
				want := kerr.TopicAuthorizationFailed.Code
				var got int16
				switch rs := resp.(type) {
				case *kmsg.DeleteTopicsResponse:
					got = rs.Topics[0].ErrorCode
				case *kmsg.CreateACLsResponse:
					got, want = rs.Results[0].ErrorCode, kerr.ClusterAuthorizationFailed.Code
				}
				if got != want {
					t.Fatalf("%s v%d: error %d, want %d", key.Name(), v, got, want)
				}
			}
		}
	}
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.Metadata, kmsg.CreateTopics} {
		if r := c.Route(int16(key), 0); r.Request() || r.Response() {
			t.Fatalf("%s: route %+v, want splice", key.Name(), r)
		}
	}
}
