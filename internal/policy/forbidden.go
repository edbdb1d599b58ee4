// Package policy decides what a client may do: today, API keys the
// operator forbids.
package policy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// ForbiddenKeys is the stage for --forbidden-api-keys: a request for one
// of keys closes the connection before a byte of it reaches the broker, as
// the proxy we replace does. It reads only the request header.
func ForbiddenKeys(keys []int) pipeline.RequestStage {
	return forbidden{keys}
}

type forbidden struct{ keys []int }

func (forbidden) Name() string { return "forbidden-api-keys" }

func (f forbidden) Interest() pipeline.Interest {
	var in pipeline.Interest
	for _, k := range f.keys {
		in.Requests = append(in.Requests, pipeline.AllVersions(kmsg.Key(k)))
	}
	return in
}

func (forbidden) OnRequest(ex *pipeline.Exchange) pipeline.Verdict {
	return pipeline.Refuse(fmt.Errorf("forbidden api key %d (%s) requested", ex.Key, kmsg.NameForKey(ex.Key)))
}
