package policy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// Per-key checks for requests about topics. Each one splits the request's
// topics into those the principal may use and those it may not; the
// denied ones are answered with the broker's error code per partition.

const (
	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opAlter           = kmsg.ACLOperationAlter
	opDescribe        = kmsg.ACLOperationDescribe
	opClusterAction   = kmsg.ACLOperationClusterAction
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	opAlterConfigs    = kmsg.ACLOperationAlterConfigs
	opIdempotentWrite = kmsg.ACLOperationIdempotentWrite
)

var (
	errTopic   = kerr.TopicAuthorizationFailed.Code
	errGroup   = kerr.GroupAuthorizationFailed.Code
	errCluster = kerr.ClusterAuthorizationFailed.Code
	errTxn     = kerr.TransactionalIDAuthorizationFailed.Code
)

// topicCode is 0 when the principal may do op on the topic, else the error
// a broker answers: TOPIC_AUTHORIZATION_FAILED, or UNKNOWN_TOPIC_ID for an
// id the proxy has not seen named.
func (c *check) topicCode(name string, id [16]byte, op kmsg.ACLOperation) int16 {
	n, ok := c.topicName(name, id)
	switch {
	case !ok:
		return kerr.UnknownTopicID.Code
	case !c.topic(n, op):
		return errTopic
	}
	return 0
}

// denial is a request element the proxy answers, with its error code.
type denial[T any] struct {
	item T
	code int16
}

// sift divides s into what code allows (0) and the denials, in order.
func sift[T any](s []T, code func(*T) int16) (yes []T, no []denial[T]) {
	for i := range s {
		if e := code(&s[i]); e != 0 {
			no = append(no, denial[T]{s[i], e})
		} else {
			yes = append(yes, s[i])
		}
	}
	return yes, no
}

// part answers a partly denied request: with nothing left to forward, the
// proxy answers it all (local); otherwise the request, already cut down to
// what is allowed, is forwarded and merge adds the denials to the answer.
func part(ex *pipeline.Exchange, req kmsg.Request, forward bool, local func() kmsg.Response, merge pipeline.AfterResponse) pipeline.Verdict {
	if !forward {
		return pipeline.Reply(local())
	}
	ex.Replace(req)
	ex.After(merge)
	return pipeline.Pass()
}

// respond is a fresh response for req, fields at their defaults.
func respond[T kmsg.Response](req kmsg.Request) T {
	resp := req.ResponseKind()
	if d, ok := resp.(interface{ Default() }); ok {
		d.Default()
	}
	resp.SetVersion(req.GetVersion())
	return resp.(T)
}

// produceHead allows a Produce that names a single topic from the frame's
// first bytes alone (transactional id, then the topic, precede the
// records), so that its records stream through unread. It reports false
// when the head cannot allow it: several topics, a topic id not yet
// learned, a head longer than the bytes buffered, or a denial, whose
// answer needs the partitions. The request is then read whole and
// produce decides, recording each decision once.
func (c *check) produceHead() bool {
	head := c.ex.Head()
	if len(head) < 4 {
		return false
	}
	h, err := wire.ParseProduceHead(head[4:], c.ex.Version)
	if err != nil || h.Topics != 1 {
		return false
	}
	name, known := c.topicName(h.Topic, h.TopicID)
	if !known {
		return false
	}
	txnOK := h.TransactionalID == nil || c.a.Allowed(c.principal, c.host, kmsg.ACLResourceTypeTransactionalId, *h.TransactionalID, opWrite)
	if !txnOK || !c.a.Allowed(c.principal, c.host, kmsg.ACLResourceTypeTopic, name, opWrite) {
		return false
	}
	if h.TransactionalID != nil {
		c.record(kmsg.ACLResourceTypeTransactionalId, *h.TransactionalID, opWrite, true)
	}
	c.record(kmsg.ACLResourceTypeTopic, name, opWrite, true)
	return true
}

func (c *check) produce(ex *pipeline.Exchange, r *kmsg.ProduceRequest) pipeline.Verdict {
	code := func(t *kmsg.ProduceRequestTopic) int16 { return c.topicCode(t.Topic, t.TopicID, opWrite) }
	if r.TransactionID != nil && !c.txn(*r.TransactionID, opWrite) {
		code = func(*kmsg.ProduceRequestTopic) int16 { return errTxn } // checked first, as Kafka does
	}
	yes, no := sift(r.Topics, code)
	if len(no) == 0 {
		return pipeline.Pass()
	}
	if r.Acks == 0 {
		// Kafka closes an acks=0 connection whose produce failed: the
		// client has no other way to learn it.
		return pipeline.Refuse(fmt.Errorf("produce with acks=0 not authorized (%s on %q)", kerr.ErrorForCode(no[0].code), no[0].item.Topic))
	}
	add := func(dst []kmsg.ProduceResponseTopic) []kmsg.ProduceResponseTopic {
		for _, d := range no {
			t := kmsg.NewProduceResponseTopic()
			t.Topic, t.TopicID = d.item.Topic, d.item.TopicID
			for _, p := range d.item.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.ProduceResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		p := resp.(*kmsg.ProduceResponse)
		p.Topics = add(p.Topics)
	})
}

// fetch checks Read on each topic (ClusterAction for a follower). Fetch
// sessions (KIP-227) are turned off for clients under ACLs: a broker
// re-checks the partitions of a session at every fetch, and the proxy can
// only check what a request names, so every fetch is sent whole.
func (c *check) fetch(ex *pipeline.Exchange, r *kmsg.FetchRequest) pipeline.Verdict {
	replica := r.ReplicaID
	if r.Version >= 15 {
		replica = r.ReplicaState.ID
	}
	code := func(t *kmsg.FetchRequestTopic) int16 { return c.topicCode(t.Topic, t.TopicID, opRead) }
	if replica >= 0 && !c.cluster(opClusterAction) {
		code = func(*kmsg.FetchRequestTopic) int16 { return errCluster }
	}
	yes, no := sift(r.Topics, code)
	sessionless := r.Version < 7 || (r.SessionID == 0 && r.SessionEpoch == -1)
	if len(no) == 0 && sessionless {
		return pipeline.Pass()
	}
	if r.Version >= 7 {
		r.SessionID, r.SessionEpoch, r.ForgottenTopics = 0, -1, nil
	}
	add := func(dst []kmsg.FetchResponseTopic) []kmsg.FetchResponseTopic {
		for _, d := range no {
			t := kmsg.NewFetchResponseTopic()
			t.Topic, t.TopicID = d.item.Topic, d.item.TopicID
			for _, p := range d.item.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	if len(no) == 0 {
		ex.Replace(r) // only the session fields changed
		return pipeline.Pass()
	}
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.FetchResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		f := resp.(*kmsg.FetchResponse)
		f.Topics = add(f.Topics)
	})
}

func (c *check) listOffsets(ex *pipeline.Exchange, r *kmsg.ListOffsetsRequest) pipeline.Verdict {
	yes, no := sift(r.Topics, func(t *kmsg.ListOffsetsRequestTopic) int16 { return c.topicCode(t.Topic, [16]byte{}, opDescribe) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.ListOffsetsResponseTopic) []kmsg.ListOffsetsResponseTopic {
		for _, d := range no {
			t := kmsg.NewListOffsetsResponseTopic()
			t.Topic = d.item.Topic
			for _, p := range d.item.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.ListOffsetsResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		l := resp.(*kmsg.ListOffsetsResponse)
		l.Topics = add(l.Topics)
	})
}

func (c *check) offsetForLeaderEpoch(ex *pipeline.Exchange, r *kmsg.OffsetForLeaderEpochRequest) pipeline.Verdict {
	code := func(t *kmsg.OffsetForLeaderEpochRequestTopic) int16 {
		return c.topicCode(t.Topic, [16]byte{}, opDescribe)
	}
	if r.Version >= 3 && r.ReplicaID >= 0 && !c.cluster(opClusterAction) {
		code = func(*kmsg.OffsetForLeaderEpochRequestTopic) int16 { return errCluster }
	}
	yes, no := sift(r.Topics, code)
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.OffsetForLeaderEpochResponseTopic) []kmsg.OffsetForLeaderEpochResponseTopic {
		for _, d := range no {
			t := kmsg.NewOffsetForLeaderEpochResponseTopic()
			t.Topic = d.item.Topic
			for _, p := range d.item.Partitions {
				rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.OffsetForLeaderEpochResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		o := resp.(*kmsg.OffsetForLeaderEpochResponse)
		o.Topics = add(o.Topics)
	})
}

func (c *check) deleteRecords(ex *pipeline.Exchange, r *kmsg.DeleteRecordsRequest) pipeline.Verdict {
	yes, no := sift(r.Topics, func(t *kmsg.DeleteRecordsRequestTopic) int16 { return c.topicCode(t.Topic, [16]byte{}, opDelete) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.DeleteRecordsResponseTopic) []kmsg.DeleteRecordsResponseTopic {
		for _, d := range no {
			t := kmsg.NewDeleteRecordsResponseTopic()
			t.Topic = d.item.Topic
			for _, p := range d.item.Partitions {
				rp := kmsg.NewDeleteRecordsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DeleteRecordsResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		d := resp.(*kmsg.DeleteRecordsResponse)
		d.Topics = add(d.Topics)
	})
}

// createTopics: Create on the cluster, or else on each topic.
func (c *check) createTopics(ex *pipeline.Exchange, r *kmsg.CreateTopicsRequest) pipeline.Verdict {
	if c.cluster(opCreate) {
		return pipeline.Pass()
	}
	yes, no := sift(r.Topics, func(t *kmsg.CreateTopicsRequestTopic) int16 { return c.topicCode(t.Topic, [16]byte{}, opCreate) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.CreateTopicsResponseTopic) []kmsg.CreateTopicsResponseTopic {
		for _, d := range no {
			t := kmsg.NewCreateTopicsResponseTopic()
			t.Topic, t.ErrorCode = d.item.Topic, d.code
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.CreateTopicsResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		ct := resp.(*kmsg.CreateTopicsResponse)
		ct.Topics = add(ct.Topics)
	})
}

// deleteTopics: Delete on each topic, named (v0–v5) or by name or id (v6+).
func (c *check) deleteTopics(ex *pipeline.Exchange, r *kmsg.DeleteTopicsRequest) pipeline.Verdict {
	if r.Version < 6 {
		yes, no := sift(r.TopicNames, func(t *string) int16 { return c.topicCode(*t, [16]byte{}, opDelete) })
		if len(no) == 0 {
			return pipeline.Pass()
		}
		add := func(dst []kmsg.DeleteTopicsResponseTopic) []kmsg.DeleteTopicsResponseTopic {
			for _, d := range no {
				t := kmsg.NewDeleteTopicsResponseTopic()
				t.Topic, t.ErrorCode = kmsg.StringPtr(d.item), d.code
				dst = append(dst, t)
			}
			return dst
		}
		r.TopicNames = yes
		return part(ex, r, len(yes) > 0, func() kmsg.Response {
			resp := respond[*kmsg.DeleteTopicsResponse](r)
			resp.Topics = add(nil)
			return resp
		}, func(resp kmsg.Response) {
			dt := resp.(*kmsg.DeleteTopicsResponse)
			dt.Topics = add(dt.Topics)
		})
	}
	yes, no := sift(r.Topics, func(t *kmsg.DeleteTopicsRequestTopic) int16 {
		return c.topicCode(deref(t.Topic), t.TopicID, opDelete)
	})
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.DeleteTopicsResponseTopic) []kmsg.DeleteTopicsResponseTopic {
		for _, d := range no {
			t := kmsg.NewDeleteTopicsResponseTopic()
			t.Topic, t.TopicID, t.ErrorCode = d.item.Topic, d.item.TopicID, d.code
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DeleteTopicsResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		dt := resp.(*kmsg.DeleteTopicsResponse)
		dt.Topics = add(dt.Topics)
	})
}

func (c *check) createPartitions(ex *pipeline.Exchange, r *kmsg.CreatePartitionsRequest) pipeline.Verdict {
	yes, no := sift(r.Topics, func(t *kmsg.CreatePartitionsRequestTopic) int16 { return c.topicCode(t.Topic, [16]byte{}, opAlter) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.CreatePartitionsResponseTopic) []kmsg.CreatePartitionsResponseTopic {
		for _, d := range no {
			t := kmsg.NewCreatePartitionsResponseTopic()
			t.Topic, t.ErrorCode = d.item.Topic, d.code
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.CreatePartitionsResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		cp := resp.(*kmsg.CreatePartitionsResponse)
		cp.Topics = add(cp.Topics)
	})
}

func (c *check) describeProducers(ex *pipeline.Exchange, r *kmsg.DescribeProducersRequest) pipeline.Verdict {
	yes, no := sift(r.Topics, func(t *kmsg.DescribeProducersRequestTopic) int16 { return c.topicCode(t.Topic, [16]byte{}, opRead) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.DescribeProducersResponseTopic) []kmsg.DescribeProducersResponseTopic {
		for _, d := range no {
			t := kmsg.NewDescribeProducersResponseTopic()
			t.Topic = d.item.Topic
			for _, p := range d.item.Partitions {
				rp := kmsg.NewDescribeProducersResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DescribeProducersResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		dp := resp.(*kmsg.DescribeProducersResponse)
		dp.Topics = add(dp.Topics)
	})
}

// describeTopicPartitions: Describe on each named topic; a listing (no
// names) shows only the topics the principal may describe.
func (c *check) describeTopicPartitions(ex *pipeline.Exchange, r *kmsg.DescribeTopicPartitionsRequest) pipeline.Verdict {
	learn := func(ts []kmsg.DescribeTopicPartitionsResponseTopic) {
		for _, t := range ts {
			if t.Topic != nil {
				c.ids.learn(t.TopicID, *t.Topic)
			}
		}
	}
	if len(r.Topics) == 0 {
		ex.After(func(resp kmsg.Response) {
			d := resp.(*kmsg.DescribeTopicPartitionsResponse)
			learn(d.Topics)
			d.Topics = keep(d.Topics, func(t *kmsg.DescribeTopicPartitionsResponseTopic) bool {
				return t.Topic != nil && c.topic(*t.Topic, opDescribe)
			})
			c.topicOps(d.Topics)
		})
		return pipeline.Pass()
	}
	yes, no := sift(r.Topics, func(t *kmsg.DescribeTopicPartitionsRequestTopic) int16 {
		return c.topicCode(t.Topic, [16]byte{}, opDescribe)
	})
	add := func(dst []kmsg.DescribeTopicPartitionsResponseTopic) []kmsg.DescribeTopicPartitionsResponseTopic {
		for _, d := range no {
			t := kmsg.NewDescribeTopicPartitionsResponseTopic()
			t.Topic, t.ErrorCode = kmsg.StringPtr(d.item.Topic), d.code
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DescribeTopicPartitionsResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		d := resp.(*kmsg.DescribeTopicPartitionsResponse)
		learn(d.Topics)
		c.topicOps(d.Topics)
		d.Topics = add(d.Topics)
	})
}

// topicOps puts the principal's own authorized operations into the
// broker's answer (which are the proxy's upstream identity's).
func (c *check) topicOps(ts []kmsg.DescribeTopicPartitionsResponseTopic) {
	for i := range ts {
		if ts[i].Topic != nil && ts[i].AuthorizedOperations != -2147483648 {
			ts[i].AuthorizedOperations = c.ops(kmsg.ACLResourceTypeTopic, *ts[i].Topic, topicOps)
		}
	}
}

// The operations Kafka reports in the authorized-operations fields.
var (
	clusterOps = []kmsg.ACLOperation{opCreate, opAlter, opDescribe, opClusterAction, opDescribeConfigs, opAlterConfigs, opIdempotentWrite}
	topicOps   = []kmsg.ACLOperation{opRead, opWrite, opCreate, opDelete, opAlter, opDescribe, opDescribeConfigs, opAlterConfigs}
	groupOps   = []kmsg.ACLOperation{opRead, opDelete, opDescribe}
)

// ops is the bit field of operations the principal may do on a resource.
func (c *check) ops(t kmsg.ACLResourceType, name string, ops []kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		if c.a.Allowed(c.principal, c.host, t, name, op) { // not a decision about the request: not audited
			bits |= 1 << op
		}
	}
	return bits
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
