package policy

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/acl"
	"github.com/kafka-proxy/kafka-proxy/internal/audit"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// Rules is where the ACL stage reads the rules in force (an *acl.Store).
type Rules interface {
	Authorizer() *acl.Authorizer
}

// ACLs is the stage that enforces Kafka's ACLs for the client's principal
// on every request, with the resources and operations a Kafka broker
// checks for each key (docs/acl.md). A request denied whole is answered by
// the proxy with the broker's error codes; a request denied in part is
// forwarded without the denied resources and their errors are put back
// into the broker's answer. Super users' requests are not decoded.
// trail, if not nil, records each denied resource (and with
// --audit-log-allowed each allowed one) of a request.
func ACLs(rules Rules, log *slog.Logger, trail *audit.Log, opts ...ACLOption) pipeline.RequestStage {
	s := &aclStage{rules: rules, ids: newTopicIDs(), shares: newShareSessions(), log: log, trail: trail}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ACLOption adjusts the acls stage.
type ACLOption func(*aclStage)

// CountDenials has denied called once per denied resource of a request,
// with its resource type (for proxy_acl_denials_total).
func CountDenials(denied func(resourceType string)) ACLOption {
	return func(s *aclStage) { s.denied = denied }
}

type aclStage struct {
	rules  Rules
	ids    *topicIDs // topic id → name, learned from the answers the proxy relays
	shares *shareSessions
	denied func(resourceType string) // nil: not counted
	log    *slog.Logger
	trail  *audit.Log
}

func (*aclStage) Name() string { return "acls" }

// Interest is every request of every key kmsg knows, read whole: each
// key's check needs its resource names. Produce is the exception: its
// head usually decides it (produceHead), so it is read whole only when
// that is not enough. SASL and ApiVersions are never authorized in Kafka
// and stay out.
func (*aclStage) Interest() pipeline.Interest {
	var in pipeline.Interest
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		switch kmsg.Key(k) {
		case kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate:
			continue
		}
		if req := kmsg.RequestForKey(k); req != nil {
			body := kmsg.Key(k) != kmsg.Produce
			in.Requests = append(in.Requests, pipeline.Keys{Key: kmsg.Key(k), MaxVersion: pipeline.AnyVersion, Body: body})
		}
	}
	return in
}

// check is one request's view of the rules: who asks, from where.
type check struct {
	a         *acl.Authorizer
	principal string
	host      net.IP
	ids       *topicIDs
	shares    *shareSessions
	denied    func(resourceType string)
	version   int16
	ex        *pipeline.Exchange
	trail     *audit.Log
	decided   bool // the request's checks are done: later checks filter answers and are not audited
}

// may asks the authorizer about one resource of the request, and records
// the decision in the audit trail.
func (c *check) may(t kmsg.ACLResourceType, name string, op kmsg.ACLOperation) bool {
	ok := c.a.Allowed(c.principal, c.host, t, name, op)
	c.record(t, name, op, ok)
	return ok
}

// record counts a denial and puts one decision about a resource of the
// request in the audit trail: every denial, and with --audit-log-allowed
// every allowance.
func (c *check) record(t kmsg.ACLResourceType, name string, op kmsg.ACLOperation, ok bool) {
	if !ok && !c.decided && c.denied != nil {
		c.denied(t.String())
	}
	if c.trail == nil || c.decided || (ok && !c.trail.Allowed()) {
		return
	}
	e := audit.Event{Event: audit.ACLDenied, Decision: "deny", Principal: c.principal,
		APIKey: kmsg.NameForKey(c.ex.Key), APIVersion: audit.Version(c.ex.Version),
		ResourceType: t.String(), ResourceName: name, Operation: op.String()}
	if ok {
		e.Event, e.Decision = audit.ACLAllowed, "allow"
	}
	if cl := c.ex.Client; cl != nil {
		if cl.Remote != nil {
			e.Client = cl.Remote.String()
		}
		if cl.Listener != nil {
			e.Listener = cl.Listener.String()
		}
		if cl.SASL != nil {
			e.Mechanism = cl.SASL.Mechanism()
		}
	}
	c.trail.Record(e)
}

func (c *check) topic(name string, op kmsg.ACLOperation) bool {
	return c.may(kmsg.ACLResourceTypeTopic, name, op)
}

func (c *check) group(name string, op kmsg.ACLOperation) bool {
	return c.may(kmsg.ACLResourceTypeGroup, name, op)
}

func (c *check) txn(id string, op kmsg.ACLOperation) bool {
	return c.may(kmsg.ACLResourceTypeTransactionalId, id, op)
}

func (c *check) cluster(op kmsg.ACLOperation) bool {
	return c.may(kmsg.ACLResourceTypeCluster, acl.ClusterName, op)
}

// topicName is a request's topic: its name, or for versions that name
// topics by id, the name the id was learned under ("" if unknown).
func (c *check) topicName(name string, id [16]byte) (string, bool) {
	if id == ([16]byte{}) {
		return name, true
	}
	return c.ids.name(id)
}

func (s *aclStage) OnRequest(ex *pipeline.Exchange) pipeline.Verdict {
	a := s.rules.Authorizer()
	principal := ex.Client.Principal
	if a.Super(principal) {
		return pipeline.Pass()
	}
	c := &check{a: a, principal: principal, host: hostOf(ex.Client.Remote), ids: s.ids, shares: s.shares, denied: s.denied, version: ex.Version, ex: ex, trail: s.trail}
	if ex.Key == kmsg.Produce.Int16() && c.produceHead() {
		return pipeline.Pass()
	}
	req, err := ex.Request()
	if err != nil {
		// Never forwarded unchecked. (A single-topic Produce allowed from
		// its head is forwarded unread: its resources are checked, and its
		// record data is the broker's to validate, as without ACLs.)
		return pipeline.Refuse(fmt.Errorf("malformed request under acls: %w", err))
	}
	v := s.decide(c, ex, req)
	c.decided = true
	if v.Action == pipeline.Answer {
		v.Response.SetVersion(ex.Version)
	}
	return v
}

// decide dispatches to the key's check.
func (s *aclStage) decide(c *check, ex *pipeline.Exchange, req kmsg.Request) pipeline.Verdict {
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		return c.produce(ex, r)
	case *kmsg.FetchRequest:
		return c.fetch(ex, r)
	case *kmsg.ListOffsetsRequest:
		return c.listOffsets(ex, r)
	case *kmsg.MetadataRequest:
		return c.metadata(ex, r)
	case *kmsg.OffsetCommitRequest:
		return c.offsetCommit(ex, r)
	case *kmsg.OffsetFetchRequest:
		return c.offsetFetch(ex, r)
	case *kmsg.FindCoordinatorRequest:
		return c.findCoordinator(ex, r)
	case *kmsg.JoinGroupRequest:
		return c.wholeGroup(r, r.Group, kmsg.ACLOperationRead)
	case *kmsg.HeartbeatRequest:
		return c.wholeGroup(r, r.Group, kmsg.ACLOperationRead)
	case *kmsg.LeaveGroupRequest:
		return c.wholeGroup(r, r.Group, kmsg.ACLOperationRead)
	case *kmsg.SyncGroupRequest:
		return c.wholeGroup(r, r.Group, kmsg.ACLOperationRead)
	case *kmsg.DescribeGroupsRequest:
		return c.describeGroups(ex, r)
	case *kmsg.ListGroupsRequest:
		return c.listGroups(ex, r)
	case *kmsg.CreateTopicsRequest:
		return c.createTopics(ex, r)
	case *kmsg.DeleteTopicsRequest:
		return c.deleteTopics(ex, r)
	case *kmsg.DeleteRecordsRequest:
		return c.deleteRecords(ex, r)
	case *kmsg.InitProducerIDRequest:
		return c.initProducerID(r)
	case *kmsg.OffsetForLeaderEpochRequest:
		return c.offsetForLeaderEpoch(ex, r)
	case *kmsg.AddPartitionsToTxnRequest:
		return c.addPartitionsToTxn(r)
	case *kmsg.AddOffsetsToTxnRequest:
		if !c.txn(r.TransactionalID, kmsg.ACLOperationWrite) {
			return wholeError(r, kerr.TransactionalIDAuthorizationFailed)
		}
		return c.wholeGroup(r, r.Group, kmsg.ACLOperationRead)
	case *kmsg.EndTxnRequest:
		if !c.txn(r.TransactionalID, kmsg.ACLOperationWrite) {
			return wholeError(r, kerr.TransactionalIDAuthorizationFailed)
		}
		return pipeline.Pass()
	case *kmsg.TxnOffsetCommitRequest:
		return c.txnOffsetCommit(ex, r)
	case *kmsg.DescribeConfigsRequest:
		return c.describeConfigs(ex, r)
	case *kmsg.AlterConfigsRequest:
		return c.alterConfigs(ex, r)
	case *kmsg.IncrementalAlterConfigsRequest:
		return c.incrementalAlterConfigs(ex, r)
	case *kmsg.CreatePartitionsRequest:
		return c.createPartitions(ex, r)
	case *kmsg.DeleteGroupsRequest:
		return c.deleteGroups(ex, r)
	case *kmsg.OffsetDeleteRequest:
		return c.offsetDelete(ex, r)
	case *kmsg.DescribeProducersRequest:
		return c.describeProducers(ex, r)
	case *kmsg.DescribeTransactionsRequest:
		return c.describeTransactions(ex, r)
	case *kmsg.ListTransactionsRequest:
		ex.After(func(resp kmsg.Response) {
			r := resp.(*kmsg.ListTransactionsResponse)
			r.TransactionStates = keep(r.TransactionStates, func(t *kmsg.ListTransactionsResponseTransactionState) bool {
				return c.txn(t.TransactionalID, kmsg.ACLOperationDescribe)
			})
		})
		return pipeline.Pass()
	case *kmsg.ConsumerGroupHeartbeatRequest:
		return c.consumerGroupHeartbeat(r)
	case *kmsg.ConsumerGroupDescribeRequest:
		return c.consumerGroupDescribe(ex, r)
	case *kmsg.DescribeTopicPartitionsRequest:
		return c.describeTopicPartitions(ex, r)
	case *kmsg.DescribeClusterRequest:
		return c.describeCluster(ex, r)
	case *kmsg.GetTelemetrySubscriptionsRequest, *kmsg.PushTelemetryRequest:
		return pipeline.Pass() // every client may, as in Kafka
	case *kmsg.CreateDelegationTokenRequest, *kmsg.RenewDelegationTokenRequest, *kmsg.ExpireDelegationTokenRequest, *kmsg.DescribeDelegationTokenRequest:
		// A token would be the proxy's upstream identity's, not the
		// client's: only super users may.
		return wholeError(req, kerr.DelegationTokenAuthorizationFailed)
	}
	if v, ok := c.shareAndStreams(ex, req); ok {
		return v
	}
	if op, ok := clusterKeys[kmsg.Key(ex.Key)]; ok {
		return c.wholeCluster(req, op)
	}
	return pipeline.Refuse(fmt.Errorf("%s is not authorized for %s: the proxy checks no resource for it, so only super users may send it", kmsg.NameForKey(ex.Key), c.principal))
}

// hostOf is the client's address as ACL hosts name it.
func hostOf(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	}
	return nil
}

// keep filters s in place to the elements ok accepts.
func keep[T any](s []T, ok func(*T) bool) []T {
	out := s[:0]
	for i := range s {
		if ok(&s[i]) {
			out = append(out, s[i])
		}
	}
	return out
}
