package policy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// Per-key checks for producer ids and transactions.

// initProducerID: Write on the transactional id; an idempotent producer
// (no id) needs IdempotentWrite on the cluster or Write on some topic.
func (c *check) initProducerID(r *kmsg.InitProducerIDRequest) pipeline.Verdict {
	if r.TransactionalID != nil {
		if !c.txn(*r.TransactionalID, opWrite) {
			return wholeError(r, kerr.TransactionalIDAuthorizationFailed)
		}
		return pipeline.Pass()
	}
	if c.cluster(opIdempotentWrite) || c.a.AnyAllowed(c.principal, c.host, kmsg.ACLResourceTypeTopic, opWrite) {
		return pipeline.Pass()
	}
	return wholeError(r, kerr.ClusterAuthorizationFailed)
}

// addPartitionsToTxn: clients' versions (v0–v3) need Write on the
// transactional id and on every topic; like Kafka, one denied topic fails
// the whole request, the allowed partitions with OPERATION_NOT_ATTEMPTED.
// The batched versions (v4+) are brokers' and need ClusterAction.
func (c *check) addPartitionsToTxn(r *kmsg.AddPartitionsToTxnRequest) pipeline.Verdict {
	if r.Version >= 4 {
		return c.wholeCluster(r, opClusterAction)
	}
	txnDenied := !c.txn(r.TransactionalID, opWrite)
	codes := make([]int16, len(r.Topics))
	anyDenied := txnDenied
	for i, t := range r.Topics {
		switch {
		case txnDenied:
			codes[i] = errTxn
		case !c.topic(t.Topic, opWrite):
			codes[i], anyDenied = errTopic, true
		}
	}
	if !anyDenied {
		return pipeline.Pass()
	}
	resp := respond[*kmsg.AddPartitionsToTxnResponse](r)
	for i, t := range r.Topics {
		code := codes[i]
		if code == 0 {
			code = kerr.OperationNotAttempted.Code
		}
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return pipeline.Reply(resp)
}

// txnOffsetCommit: Write on the transactional id, Read on the group (each
// failing every partition), then Read on each topic.
func (c *check) txnOffsetCommit(ex *pipeline.Exchange, r *kmsg.TxnOffsetCommitRequest) pipeline.Verdict {
	code := func(t *kmsg.TxnOffsetCommitRequestTopic) int16 { return c.topicCode(t.Topic, t.TopicID, opRead) }
	switch {
	case !c.txn(r.TransactionalID, opWrite):
		code = func(*kmsg.TxnOffsetCommitRequestTopic) int16 { return errTxn }
	case !c.group(r.Group, opRead):
		code = func(*kmsg.TxnOffsetCommitRequestTopic) int16 { return errGroup }
	}
	yes, no := sift(r.Topics, code)
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.TxnOffsetCommitResponseTopic) []kmsg.TxnOffsetCommitResponseTopic {
		for _, d := range no {
			t := kmsg.NewTxnOffsetCommitResponseTopic()
			t.Topic, t.TopicID = d.item.Topic, d.item.TopicID
			for _, p := range d.item.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.TxnOffsetCommitResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		t := resp.(*kmsg.TxnOffsetCommitResponse)
		t.Topics = add(t.Topics)
	})
}

func (c *check) describeTransactions(ex *pipeline.Exchange, r *kmsg.DescribeTransactionsRequest) pipeline.Verdict {
	yes, no := sift(r.TransactionalIDs, func(id *string) int16 {
		if !c.txn(*id, opDescribe) {
			return errTxn
		}
		return 0
	})
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.DescribeTransactionsResponseTransactionState) []kmsg.DescribeTransactionsResponseTransactionState {
		for _, d := range no {
			s := kmsg.NewDescribeTransactionsResponseTransactionState()
			s.TransactionalID, s.ErrorCode = d.item, d.code
			dst = append(dst, s)
		}
		return dst
	}
	r.TransactionalIDs = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DescribeTransactionsResponse](r)
		resp.TransactionStates = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		d := resp.(*kmsg.DescribeTransactionsResponse)
		d.TransactionStates = add(d.TransactionStates)
	})
}
