package policy

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// A forbidden key is refused at every version, by header alone; other keys
// keep the splice path.
func TestForbiddenKeys(t *testing.T) {
	c, err := pipeline.NewChain(ForbiddenKeys([]int{int(kmsg.DeleteTopics), int(kmsg.CreateACLs)}))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []kmsg.Key{kmsg.DeleteTopics, kmsg.CreateACLs} {
		for v := int16(0); v <= kmsg.RequestForKey(int16(key)).MaxVersion()+1; v++ {
			r := c.Route(int16(key), v)
			if !r.Request() || r.RequestBody() || r.Response() {
				t.Fatalf("%s v%d: route %+v, want a header-only request stage", key.Name(), v, r)
			}
			verdict := c.OnRequest(r, pipeline.NewExchange(nil, int16(key), v, 7, nil))
			if verdict.Action != pipeline.Close || verdict.Err == nil || !strings.Contains(verdict.Err.Error(), key.Name()) {
				t.Fatalf("%s v%d: verdict %+v, want Close naming the key", key.Name(), v, verdict)
			}
		}
	}
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.Metadata, kmsg.CreateTopics} {
		if r := c.Route(int16(key), 0); r.Request() || r.Response() {
			t.Fatalf("%s: route %+v, want splice", key.Name(), r)
		}
	}
}
