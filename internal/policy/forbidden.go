// Package policy decides what a client may do: API keys the operator
// forbids, and ACLs for the client's principal.
package policy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/acl"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// ForbiddenKeys is the stage for --forbidden-api-keys: a request for one
// of keys never reaches the broker. Where the key's answer can say so, it
// is answered as a broker answers a principal with no ACLs at all (the
// same per-resource errors as the acls stage's, TOPIC_AUTHORIZATION_FAILED
// for a DeleteTopics, ...); otherwise, and for a request that does not
// decode, the connection is closed, as the proxy we replace does.
func ForbiddenKeys(keys []int) pipeline.RequestStage {
	return forbidden{keys: keys, none: acl.New(nil, nil, false), ids: newTopicIDs()}
}

type forbidden struct {
	keys []int
	none *acl.Authorizer // no rules: every check denies
	ids  *topicIDs
}

func (forbidden) Name() string { return "forbidden-api-keys" }

func (f forbidden) Interest() pipeline.Interest {
	var in pipeline.Interest
	for _, k := range f.keys {
		in.Requests = append(in.Requests, pipeline.Keys{Key: kmsg.Key(k), MaxVersion: pipeline.AnyVersion, Body: true})
	}
	return in
}

func (f forbidden) OnRequest(ex *pipeline.Exchange) pipeline.Verdict {
	refuse := pipeline.Refuse(fmt.Errorf("forbidden api key %d (%s) requested", ex.Key, kmsg.NameForKey(ex.Key)))
	req, err := ex.Request()
	if err != nil {
		return refuse
	}
	c := &check{a: f.none, principal: "User:forbidden", ids: f.ids, version: ex.Version, ex: ex, decided: true}
	v := (&aclStage{}).decide(c, ex, req)
	if v.Action != pipeline.Answer {
		return refuse // nothing in the answer could say no (or it would have been forwarded)
	}
	v.Response.SetVersion(ex.Version)
	return v
}
