package policy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/acl"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/policy"
)

// The rules of these tests: alice may use the "ok-*" resources; nothing
// names the "no-*" ones.
var (
	okID = [16]byte{0x0c, 1}
	noID = [16]byte{0xde, 2}
)

type staticRules struct{ a *acl.Authorizer }

func (s staticRules) Authorizer() *acl.Authorizer { return s.a }

func aliceRules() staticRules {
	var rules []acl.Rule
	add := func(t kmsg.ACLResourceType, name string, op kmsg.ACLOperation) {
		rules = append(rules, acl.Rule{Principal: "User:alice", Resource: t, Name: name, Operation: op, Host: "*"})
	}
	add(kmsg.ACLResourceTypeTopic, "ok-t", kmsg.ACLOperationAll)
	add(kmsg.ACLResourceTypeGroup, "ok-g", kmsg.ACLOperationAll)
	add(kmsg.ACLResourceTypeTransactionalId, "ok-x", kmsg.ACLOperationAll)
	add(kmsg.ACLResourceTypeTopic, "no-t", kmsg.ACLOperationCreate) // Create only: still denied what is tested
	return staticRules{acl.New(rules, []string{"User:admin"}, false)}
}

// exchange runs one request through the stage as the session does: the
// request framed at its version, the verdict, and for a forwarded request
// the frame that would reach the broker.
type result struct {
	verdict   pipeline.Verdict
	forwarded kmsg.Request // nil unless replaced
	after     pipeline.AfterResponse
}

func run(t *testing.T, st pipeline.RequestStage, principal string, req kmsg.Request) result {
	t.Helper()
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, 7)
	c := &pipeline.Client{Principal: principal, Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}}
	ex := pipeline.NewExchange(c, req.Key(), req.GetVersion(), 7, frame)
	v := st.OnRequest(ex)
	res := result{verdict: v, after: ex.AfterFunc()}
	if out := ex.Frame(); out != nil && !slices.Equal(out, frame) {
		fwd, err := pipeline.DecodeRequest(out[4:])
		if err != nil {
			t.Fatalf("forwarded frame does not decode: %v", err)
		}
		res.forwarded = fwd
	}
	return res
}

// roundTrip encodes resp as the client would read it and decodes it back:
// a well-formed answer at the request's version.
func roundTrip(t *testing.T, key, version int16, resp kmsg.Response) kmsg.Response {
	t.Helper()
	frame := pipeline.AppendResponse(nil, resp, 7)
	corr, back, err := pipeline.DecodeResponseFrame(key, version, frame[4:])
	if err != nil || corr != 7 {
		t.Fatalf("%s v%d answer does not decode: corr %d, %v", kmsg.NameForKey(key), version, corr, err)
	}
	return back
}

// teachIDs lets the stage learn the two topics' ids from a Metadata
// answer, as it does from the broker's.
func teachIDs(t *testing.T, st pipeline.RequestStage) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	res := run(t, st, "User:alice", req)
	resp := kmsg.NewPtrMetadataResponse()
	for _, x := range []struct {
		name string
		id   [16]byte
	}{{"ok-t", okID}, {"no-t", noID}} {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.TopicID = kmsg.StringPtr(x.name), x.id
		resp.Topics = append(resp.Topics, mt)
	}
	res.after(resp)
	if len(resp.Topics) != 1 || *resp.Topics[0].Topic != "ok-t" {
		t.Fatalf("all-topics metadata not filtered: %+v", resp.Topics)
	}
}

// keyCase is one key's request with an allowed and a denied resource.
type keyCase struct {
	key  kmsg.Key
	req  func(v int16) kmsg.Request
	code string // the denied resource's error
	// whole: the key's check is all or nothing (one group, one txn id),
	// so the request holds only the denied resource.
	whole bool
}

func topicCases() []keyCase {
	two := func(f func(name string, id [16]byte)) {
		f("ok-t", okID)
		f("no-t", noID)
	}
	return []keyCase{
		{key: kmsg.Produce, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.Acks, r.TimeoutMillis = -1, 1000
			two(func(name string, id [16]byte) {
				t := kmsg.NewProduceRequestTopic()
				t.Topic, t.TopicID = name, id
				p := kmsg.NewProduceRequestTopicPartition()
				t.Partitions = append(t.Partitions, p)
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.Fetch, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrFetchRequest()
			two(func(name string, id [16]byte) {
				t := kmsg.NewFetchRequestTopic()
				t.Topic, t.TopicID = name, id
				t.Partitions = append(t.Partitions, kmsg.NewFetchRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.ListOffsets, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrListOffsetsRequest()
			two(func(name string, _ [16]byte) {
				t := kmsg.NewListOffsetsRequestTopic()
				t.Topic = name
				t.Partitions = append(t.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.Metadata, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrMetadataRequest()
			two(func(name string, _ [16]byte) {
				t := kmsg.NewMetadataRequestTopic()
				t.Topic = kmsg.StringPtr(name)
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.OffsetForLeaderEpoch, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrOffsetForLeaderEpochRequest()
			two(func(name string, _ [16]byte) {
				t := kmsg.NewOffsetForLeaderEpochRequestTopic()
				t.Topic = name
				t.Partitions = append(t.Partitions, kmsg.NewOffsetForLeaderEpochRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.DeleteRecords, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDeleteRecordsRequest()
			two(func(name string, _ [16]byte) {
				t := kmsg.NewDeleteRecordsRequestTopic()
				t.Topic = name
				t.Partitions = append(t.Partitions, kmsg.NewDeleteRecordsRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.CreatePartitions, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrCreatePartitionsRequest()
			two(func(name string, _ [16]byte) {
				t := kmsg.NewCreatePartitionsRequestTopic()
				t.Topic = name
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.DeleteTopics, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDeleteTopicsRequest()
			two(func(name string, _ [16]byte) {
				r.TopicNames = append(r.TopicNames, name)
				t := kmsg.NewDeleteTopicsRequestTopic()
				t.Topic = kmsg.StringPtr(name)
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.DescribeProducers, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDescribeProducersRequest()
			two(func(name string, _ [16]byte) {
				t := kmsg.NewDescribeProducersRequestTopic()
				t.Topic, t.Partitions = name, []int32{0}
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.DescribeTopicPartitions, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDescribeTopicPartitionsRequest()
			two(func(name string, _ [16]byte) {
				t := kmsg.NewDescribeTopicPartitionsRequestTopic()
				t.Topic = name
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.DescribeConfigs, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDescribeConfigsRequest()
			two(func(name string, _ [16]byte) {
				x := kmsg.NewDescribeConfigsRequestResource()
				x.ResourceType, x.ResourceName = kmsg.ConfigResourceTypeTopic, name
				r.Resources = append(r.Resources, x)
			})
			return r
		}},
		{key: kmsg.AlterConfigs, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrAlterConfigsRequest()
			two(func(name string, _ [16]byte) {
				x := kmsg.NewAlterConfigsRequestResource()
				x.ResourceType, x.ResourceName = kmsg.ConfigResourceTypeTopic, name
				r.Resources = append(r.Resources, x)
			})
			return r
		}},
		{key: kmsg.IncrementalAlterConfigs, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrIncrementalAlterConfigsRequest()
			two(func(name string, _ [16]byte) {
				x := kmsg.NewIncrementalAlterConfigsRequestResource()
				x.ResourceType, x.ResourceName = kmsg.ConfigResourceTypeTopic, name
				r.Resources = append(r.Resources, x)
			})
			return r
		}},
		{key: kmsg.ShareFetch, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrShareFetchRequest()
			r.GroupID, r.MemberID = kmsg.StringPtr("ok-g"), kmsg.StringPtr("m")
			two(func(_ string, id [16]byte) {
				t := kmsg.NewShareFetchRequestTopic()
				t.TopicID = id
				p := kmsg.NewShareFetchRequestTopicPartition()
				p.AcknowledgementBatches = append(p.AcknowledgementBatches, kmsg.NewShareFetchRequestTopicPartitionAcknowledgementBatch())
				t.Partitions = append(t.Partitions, p)
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.ShareAcknowledge, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrShareAcknowledgeRequest()
			r.GroupID, r.MemberID, r.ShareSessionEpoch = kmsg.StringPtr("ok-g"), kmsg.StringPtr("m"), 1
			two(func(_ string, id [16]byte) {
				t := kmsg.NewShareAcknowledgeRequestTopic()
				t.TopicID = id
				t.Partitions = append(t.Partitions, kmsg.NewShareAcknowledgeRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			})
			return r
		}},
		{key: kmsg.CreateTopics, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrCreateTopicsRequest()
			for _, name := range []string{"ok-t", "no-new"} {
				t := kmsg.NewCreateTopicsRequestTopic()
				t.Topic = name
				r.Topics = append(r.Topics, t)
			}
			return r
		}},
	}
}

func groupCases() []keyCase {
	return []keyCase{
		{key: kmsg.OffsetCommit, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrOffsetCommitRequest()
			r.Group = "ok-g"
			for _, x := range []struct {
				n  string
				id [16]byte
			}{{"ok-t", okID}, {"no-t", noID}} {
				t := kmsg.NewOffsetCommitRequestTopic()
				t.Topic, t.TopicID = x.n, x.id
				t.Partitions = append(t.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			}
			return r
		}},
		{key: kmsg.OffsetFetch, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrOffsetFetchRequest()
			r.Group = "ok-g"
			g := kmsg.NewOffsetFetchRequestGroup()
			g.Group = "ok-g"
			for _, x := range []struct {
				n  string
				id [16]byte
			}{{"ok-t", okID}, {"no-t", noID}} {
				t := kmsg.NewOffsetFetchRequestTopic()
				t.Topic, t.Partitions = x.n, []int32{0}
				r.Topics = append(r.Topics, t)
				gt := kmsg.NewOffsetFetchRequestGroupTopic()
				gt.Topic, gt.TopicID, gt.Partitions = x.n, x.id, []int32{0}
				g.Topics = append(g.Topics, gt)
			}
			r.Groups = append(r.Groups, g)
			return r
		}},
		{key: kmsg.TxnOffsetCommit, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrTxnOffsetCommitRequest()
			r.TransactionalID, r.Group = "ok-x", "ok-g"
			for _, x := range []struct {
				n  string
				id [16]byte
			}{{"ok-t", okID}, {"no-t", noID}} {
				t := kmsg.NewTxnOffsetCommitRequestTopic()
				t.Topic, t.TopicID = x.n, x.id
				t.Partitions = append(t.Partitions, kmsg.NewTxnOffsetCommitRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			}
			return r
		}},
		{key: kmsg.OffsetDelete, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrOffsetDeleteRequest()
			r.Group = "ok-g"
			for _, n := range []string{"ok-t", "no-t"} {
				t := kmsg.NewOffsetDeleteRequestTopic()
				t.Topic = n
				t.Partitions = append(t.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			}
			return r
		}},
		{key: kmsg.FindCoordinator, code: "GROUP_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrFindCoordinatorRequest()
			r.CoordinatorKey, r.CoordinatorKeys = "no-g", []string{"ok-g", "no-g"}
			return r
		}},
		{key: kmsg.DescribeGroups, code: "GROUP_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.Groups = []string{"ok-g", "no-g"}
			return r
		}},
		{key: kmsg.DeleteGroups, code: "GROUP_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDeleteGroupsRequest()
			r.Groups = []string{"ok-g", "no-g"}
			return r
		}},
		{key: kmsg.DescribeShareGroupOffsets, code: "GROUP_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
			for _, g := range []string{"ok-g", "no-g"} {
				rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
				rg.GroupID = g
				t := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
				t.Topic, t.Partitions = "ok-t", []int32{0}
				rg.Topics = append(rg.Topics, t)
				r.Groups = append(r.Groups, rg)
			}
			return r
		}},
		{key: kmsg.DescribeShareGroupOffsets, code: "TOPIC_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
			rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
			rg.GroupID = "ok-g"
			for _, n := range []string{"ok-t", "no-t"} {
				t := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
				t.Topic, t.Partitions = n, []int32{0}
				rg.Topics = append(rg.Topics, t)
			}
			r.Groups = append(r.Groups, rg)
			return r
		}},
		{key: kmsg.ConsumerGroupDescribe, code: "GROUP_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrConsumerGroupDescribeRequest()
			r.Groups = []string{"ok-g", "no-g"}
			return r
		}},
		{key: kmsg.ShareGroupDescribe, code: "GROUP_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrShareGroupDescribeRequest()
			r.GroupIDs = []string{"ok-g", "no-g"}
			return r
		}},
		{key: kmsg.StreamsGroupDescribe, code: "GROUP_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrStreamsGroupDescribeRequest()
			r.Groups = []string{"ok-g", "no-g"}
			return r
		}},
		{key: kmsg.DescribeTransactions, code: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDescribeTransactionsRequest()
			r.TransactionalIDs = []string{"ok-x", "no-x"}
			return r
		}},
		{key: kmsg.JoinGroup, code: "GROUP_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrJoinGroupRequest()
			r.Group = "no-g"
			return r
		}},
		{key: kmsg.Heartbeat, code: "GROUP_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrHeartbeatRequest()
			r.Group = "no-g"
			return r
		}},
		{key: kmsg.SyncGroup, code: "GROUP_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrSyncGroupRequest()
			r.Group = "no-g"
			return r
		}},
		{key: kmsg.LeaveGroup, code: "GROUP_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrLeaveGroupRequest()
			r.Group = "no-g"
			return r
		}},
		{key: kmsg.ConsumerGroupHeartbeat, code: "GROUP_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			r.Group = "no-g"
			return r
		}},
		{key: kmsg.ShareGroupHeartbeat, code: "GROUP_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrShareGroupHeartbeatRequest()
			r.GroupID = "no-g"
			return r
		}},
		{key: kmsg.AddOffsetsToTxn, code: "GROUP_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrAddOffsetsToTxnRequest()
			r.TransactionalID, r.Group = "ok-x", "no-g"
			return r
		}},
		{key: kmsg.EndTxn, code: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrEndTxnRequest()
			r.TransactionalID = "no-x"
			return r
		}},
		{key: kmsg.InitProducerID, code: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrInitProducerIDRequest()
			r.TransactionalID = kmsg.StringPtr("no-x")
			return r
		}},
		{key: kmsg.DescribeACLs, code: "CLUSTER_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request { return kmsg.NewPtrDescribeACLsRequest() }},
		{key: kmsg.CreateACLs, code: "CLUSTER_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrCreateACLsRequest()
			r.Creations = append(r.Creations, kmsg.NewCreateACLsRequestCreation())
			return r
		}},
		{key: kmsg.DeleteACLs, code: "CLUSTER_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrDeleteACLsRequest()
			r.Filters = append(r.Filters, kmsg.NewDeleteACLsRequestFilter())
			return r
		}},
		{key: kmsg.ElectLeaders, code: "CLUSTER_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrElectLeadersRequest()
			t := kmsg.NewElectLeadersRequestTopic()
			t.Topic, t.Partitions = "ok-t", []int32{0}
			r.Topics = append(r.Topics, t)
			return r
		}},
		{key: kmsg.AlterUserSCRAMCredentials, code: "CLUSTER_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request {
			r := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			d.Name = "bob"
			r.Deletions = append(r.Deletions, d)
			return r
		}},
		{key: kmsg.CreateDelegationToken, code: "DELEGATION_TOKEN_AUTHORIZATION_FAILED", whole: true, req: func(v int16) kmsg.Request { return kmsg.NewPtrCreateDelegationTokenRequest() }},
	}
}

// TestACLStageEveryVersion: for each key, at every version kmsg knows, a
// request naming an allowed and a denied resource is forwarded without
// the denied one, and the answer the client reads (the broker's, merged,
// or the proxy's own) decodes at that version and carries the broker's
// error code for the denied resource.
func TestACLStageEveryVersion(t *testing.T) {
	cases := append(topicCases(), groupCases()...)
	for _, tc := range cases {
		proto := kmsg.RequestForKey(tc.key.Int16())
		for v := int16(0); v <= proto.MaxVersion(); v++ {
			t.Run(fmt.Sprintf("%s/v%d", kmsg.NameForKey(tc.key.Int16()), v), func(t *testing.T) {
				st := policy.ACLs(aliceRules(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
				teachIDs(t, st)
				req := tc.req(v)
				req.SetVersion(v)
				res := run(t, st, "User:alice", req)
				var answer kmsg.Response
				switch res.verdict.Action {
				case pipeline.Answer:
					answer = res.verdict.Response
				case pipeline.Forward:
					if tc.whole {
						t.Fatal("forwarded a request about a denied resource")
					}
					if res.forwarded == nil {
						t.Fatal("forwarded unchanged: the denied resource would reach the broker")
					}
					if s := fmt.Sprint(res.forwarded); strings.Contains(s, "no-") || strings.Contains(s, fmt.Sprint(noID)) {
						t.Fatalf("forwarded request still names the denied resource: %s", s)
					}
					if res.after == nil {
						t.Fatal("no merge for the denied part")
					}
					answer = res.forwarded.ResponseKind()
					if d, ok := answer.(interface{ Default() }); ok {
						d.Default()
					}
					answer.SetVersion(v)
					res.after(answer) // the broker's answer, empty here, completed
				default:
					t.Fatalf("verdict %v: %v", res.verdict.Action, res.verdict.Err)
				}
				lines := kafkatest.ErrorCodes(roundTrip(t, tc.key.Int16(), v, answer))
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, ": "+tc.code) }) {
					t.Fatalf("no %s in the answer: %q", tc.code, lines)
				}
			})
		}
	}
}

// TestACLStageSuperUser: a super user's requests pass unread.
func TestACLStageSuperUser(t *testing.T) {
	st := policy.ACLs(aliceRules(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	for _, tc := range append(topicCases(), groupCases()...) {
		req := tc.req(0)
		res := run(t, st, "User:admin", req)
		if res.verdict.Action != pipeline.Forward || res.forwarded != nil || res.after != nil {
			t.Fatalf("%s: super user's request not passed through: %+v", kmsg.NameForKey(tc.key.Int16()), res.verdict)
		}
	}
}

// TestACLStageEveryKey: every key kmsg knows, at every version, from a
// principal with no rules, is either answered with a well-formed denial,
// passed (keys Kafka authorizes for everyone), or closed with a reason;
// never forwarded with a resource unchecked.
func TestACLStageEveryKey(t *testing.T) {
	st := policy.ACLs(aliceRules(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	open := map[kmsg.Key]bool{kmsg.ApiVersions: true, kmsg.SASLHandshake: true, kmsg.SASLAuthenticate: true,
		kmsg.DescribeCluster: true, kmsg.GetTelemetrySubscriptions: true, kmsg.PushTelemetry: true,
		// Requests for no resource at all are nothing to deny.
		kmsg.ListGroups: true, kmsg.ListTransactions: true, kmsg.DescribeTopicPartitions: true, kmsg.Metadata: true}
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		proto := kmsg.RequestForKey(k)
		if proto == nil || open[kmsg.Key(k)] {
			continue
		}
		for v := int16(0); v <= proto.MaxVersion(); v++ {
			req := kmsg.RequestForKey(k)
			req.SetVersion(v)
			res := run(t, st, "User:mallory", req)
			switch res.verdict.Action {
			case pipeline.Answer:
				roundTrip(t, k, v, res.verdict.Response)
			case pipeline.Close:
				if res.verdict.Err == nil {
					t.Errorf("%s v%d: closed without a reason", kmsg.NameForKey(k), v)
				}
			case pipeline.Forward:
				// Only requests that name nothing (empty lists) may pass.
				if lines := fmt.Sprint(req); strings.Contains(lines, "no-") {
					t.Errorf("%s v%d forwarded", kmsg.NameForKey(k), v)
				}
			}
		}
	}
}

// TestACLStageMalformed: a request that does not decode is closed, never
// forwarded unchecked.
func TestACLStageMalformed(t *testing.T) {
	st := policy.ACLs(aliceRules(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
	frame = append(frame[:len(frame)-3], 0xff, 0xff, 0xff) // a topic count that is not there
	c := &pipeline.Client{Principal: "User:alice", Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	v := st.OnRequest(pipeline.NewExchange(c, req.Key(), 9, 1, frame))
	if v.Action != pipeline.Close {
		t.Fatalf("malformed request: verdict %v", v.Action)
	}
}

// TestACLStageProduceAcks0: a partly denied acks=0 produce closes the
// connection, as Kafka does (the client has no answer to read).
func TestACLStageProduceAcks0(t *testing.T) {
	st := policy.ACLs(aliceRules(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	req := topicCases()[0].req(9).(*kmsg.ProduceRequest)
	req.SetVersion(9)
	req.Acks = 0
	if res := run(t, st, "User:alice", req); res.verdict.Action != pipeline.Close {
		t.Fatalf("acks=0 with a denied topic: %v", res.verdict.Action)
	}
}

// TestACLStageFetchSessionless: fetch sessions are turned off under ACLs,
// so that every fetch names what it reads.
func TestACLStageFetchSessionless(t *testing.T) {
	st := policy.ACLs(aliceRules(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "ok-t"
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	req.Topics = append(req.Topics, ft)
	req.SessionEpoch = 0 // asks for a new session
	res := run(t, st, "User:alice", req)
	f, ok := res.forwarded.(*kmsg.FetchRequest)
	if !ok || f.SessionID != 0 || f.SessionEpoch != -1 || len(f.Topics) != 1 {
		t.Fatalf("forwarded %+v", res.forwarded)
	}
}

// TestACLStageShareSession: a share session holds partitions that later
// fetches do not name. When the principal may no longer read one, the
// next fetch has the broker forget it and answers it with
// TOPIC_AUTHORIZATION_FAILED; fetches before and after pass unchanged.
func TestACLStageShareSession(t *testing.T) {
	rules := aliceRules()
	st := policy.ACLs(&rules, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	teachIDs(t, st)
	fetch := func(epoch int32, ids ...[16]byte) result {
		r := kmsg.NewPtrShareFetchRequest()
		r.SetVersion(1)
		r.GroupID, r.MemberID, r.ShareSessionEpoch, r.MaxWaitMillis = kmsg.StringPtr("ok-g"), kmsg.StringPtr("m"), epoch, 500
		for _, id := range ids {
			ft := kmsg.NewShareFetchRequestTopic()
			ft.TopicID = id
			p := kmsg.NewShareFetchRequestTopicPartition()
			p.Partition = 3
			ft.Partitions = append(ft.Partitions, p)
			r.Topics = append(r.Topics, ft)
		}
		return run(t, st, "User:alice", r)
	}
	unchanged := func(res result, what string) {
		t.Helper()
		if res.verdict.Action != pipeline.Forward || res.forwarded != nil || res.after != nil {
			t.Fatalf("%s: not forwarded unchanged: %+v %+v", what, res.verdict, res.forwarded)
		}
	}
	unchanged(fetch(0, okID), "opening the session on a readable topic")
	unchanged(fetch(1), "an incremental fetch")

	// A new session naming a denied topic: the broker never gets it.
	res := fetch(0, okID, noID)
	f, ok := res.forwarded.(*kmsg.ShareFetchRequest)
	if !ok || len(f.Topics) != 1 || f.Topics[0].TopicID != okID || len(f.ForgottenTopicsData) != 0 {
		t.Fatalf("forwarded %+v", res.forwarded)
	}

	// Alice loses Read on ok-t.
	rules.a = acl.New([]acl.Rule{{Principal: "User:alice", Resource: kmsg.ACLResourceTypeGroup, Name: "ok-g", Operation: kmsg.ACLOperationAll, Host: "*"}}, nil, false)
	res = fetch(1)
	f, ok = res.forwarded.(*kmsg.ShareFetchRequest)
	if !ok || len(f.ForgottenTopicsData) != 1 || f.ForgottenTopicsData[0].TopicID != okID || !slices.Equal(f.ForgottenTopicsData[0].Partitions, []int32{3}) {
		t.Fatalf("revoked partition not forgotten at the broker: %+v", res.forwarded)
	}
	if f.MaxWaitMillis != 0 {
		t.Errorf("max wait %d with only a denial to answer, want 0", f.MaxWaitMillis)
	}
	resp := kmsg.NewPtrShareFetchResponse()
	resp.SetVersion(1)
	res.after(resp)
	lines := kafkatest.ErrorCodes(roundTrip(t, kmsg.ShareFetch.Int16(), 1, resp))
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, ": TOPIC_AUTHORIZATION_FAILED") }) {
		t.Fatalf("revoked partition not answered: %q", lines)
	}
	unchanged(fetch(2), "the fetch after the session forgot the partition")
}
