package policy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// metadata: Describe on each named topic, as Kafka answers it: a topic the
// principal may not describe is TOPIC_AUTHORIZATION_FAILED; asked for all
// topics, the answer lists only those it may describe; a topic that does
// not exist is created only with Create on the cluster or the topic, else
// TOPIC_AUTHORIZATION_FAILED. The topic ids in every answer teach the
// proxy the names later requests give by id.
func (c *check) metadata(ex *pipeline.Exchange, r *kmsg.MetadataRequest) pipeline.Verdict {
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	autoCreate := r.Version < 4 || r.AllowAutoTopicCreation
	var no []denial[kmsg.MetadataRequestTopic]
	noCreate := map[string]bool{}
	if !all {
		var yes []kmsg.MetadataRequestTopic
		yes, no = sift(r.Topics, func(t *kmsg.MetadataRequestTopic) int16 {
			return c.topicCode(deref(t.Topic), t.TopicID, opDescribe)
		})
		if autoCreate && !c.cluster(opCreate) {
			for _, t := range yes {
				if t.Topic != nil && !c.topic(*t.Topic, opCreate) {
					noCreate[*t.Topic] = true
				}
			}
		}
		if len(noCreate) > 0 {
			r.AllowAutoTopicCreation = false // the broker must not create them
		}
		r.Topics = yes
		if len(yes) == 0 {
			if r.Version == 0 {
				// v0 cannot ask for no topics (empty means every one).
				resp := respond[*kmsg.MetadataResponse](r)
				resp.Topics = c.metadataDenials(nil, no)
				return pipeline.Reply(resp)
			}
			// Ask for none (an empty list, not null): the broker still
			// answers with its brokers, cluster id and controller.
			r.Topics = []kmsg.MetadataRequestTopic{}
		}
		switch {
		case len(noCreate) > 0 && r.Version < 4:
			// v0–3 cannot say "do not create": ask at v4, which can, and
			// answer the client at its own version.
			ex.ReplaceAt(r, 4)
		case len(no) > 0 || len(noCreate) > 0:
			ex.Replace(r)
		}
	}
	ex.After(func(resp kmsg.Response) {
		m := resp.(*kmsg.MetadataResponse)
		for _, t := range m.Topics {
			if t.Topic != nil {
				c.ids.learn(t.TopicID, *t.Topic)
			}
		}
		if all {
			m.Topics = keep(m.Topics, func(t *kmsg.MetadataResponseTopic) bool {
				return t.Topic != nil && c.topic(*t.Topic, opDescribe)
			})
		}
		for i := range m.Topics {
			t := &m.Topics[i]
			if t.Topic == nil {
				continue
			}
			if t.ErrorCode == kerr.UnknownTopicOrPartition.Code && noCreate[*t.Topic] {
				t.ErrorCode = errTopic // Kafka: not created, not authorized to
			}
			if r.IncludeTopicAuthorizedOperations && t.ErrorCode == 0 {
				t.AuthorizedOperations = c.ops(kmsg.ACLResourceTypeTopic, *t.Topic, topicOps)
			}
		}
		if r.IncludeClusterAuthorizedOperations && r.Version <= 10 {
			m.AuthorizedOperations = c.ops(kmsg.ACLResourceTypeCluster, "kafka-cluster", clusterOps)
		}
		m.Topics = c.metadataDenials(m.Topics, no)
	})
	return pipeline.Pass()
}

func (c *check) metadataDenials(dst []kmsg.MetadataResponseTopic, no []denial[kmsg.MetadataRequestTopic]) []kmsg.MetadataResponseTopic {
	for _, d := range no {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic, t.TopicID, t.ErrorCode = d.item.Topic, d.item.TopicID, d.code
		dst = append(dst, t)
	}
	return dst
}

// describeCluster is open to every client, as in Kafka; only the
// authorized operations, if asked for, are the principal's own.
func (c *check) describeCluster(ex *pipeline.Exchange, r *kmsg.DescribeClusterRequest) pipeline.Verdict {
	if r.IncludeClusterAuthorizedOperations {
		ex.After(func(resp kmsg.Response) {
			resp.(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations = c.ops(kmsg.ACLResourceTypeCluster, "kafka-cluster", clusterOps)
		})
	}
	return pipeline.Pass()
}
