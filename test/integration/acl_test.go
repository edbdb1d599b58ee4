package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// aclRule is one of alice's rules, written both as a kfake ACL and as a
// line of the proxy's rule file.
type aclRule struct {
	res    kmsg.ACLResourceType
	name   string
	prefix bool
	op     kmsg.ACLOperation
	allow  bool
}

var aliceRules = []aclRule{
	{kmsg.ACLResourceTypeTopic, "allowed", false, kmsg.ACLOperationRead, true},
	{kmsg.ACLResourceTypeTopic, "allowed", false, kmsg.ACLOperationWrite, true},
	{kmsg.ACLResourceTypeTopic, "pub-", true, kmsg.ACLOperationDescribe, true},
	{kmsg.ACLResourceTypeTopic, "se", true, kmsg.ACLOperationAll, true},
	{kmsg.ACLResourceTypeTopic, "secret", false, kmsg.ACLOperationWrite, false},
	{kmsg.ACLResourceTypeGroup, "g-ok", false, kmsg.ACLOperationRead, true},
	{kmsg.ACLResourceTypeTransactionalId, "tx-ok", false, kmsg.ACLOperationWrite, true},
}

var aclTopics = []string{"allowed", "denied", "pub-news", "secret"}

func (r aclRule) kfake() kfake.ACL {
	pattern := kmsg.ACLResourcePatternTypeLiteral
	if r.prefix {
		pattern = kmsg.ACLResourcePatternTypePrefixed
	}
	return kfake.ACL{Resource: r.res, Name: r.name, Pattern: pattern, Operation: r.op, Allow: r.allow}
}

// yaml is the rule as a plain rule list entry.
func (r aclRule) yaml(principal string) string {
	types := map[kmsg.ACLResourceType]string{kmsg.ACLResourceTypeTopic: "topic", kmsg.ACLResourceTypeGroup: "group",
		kmsg.ACLResourceTypeTransactionalId: "transactionalId", kmsg.ACLResourceTypeCluster: "cluster"}
	ops := map[kmsg.ACLOperation]string{kmsg.ACLOperationRead: "Read", kmsg.ACLOperationWrite: "Write",
		kmsg.ACLOperationDescribe: "Describe", kmsg.ACLOperationAll: "All", kmsg.ACLOperationCreate: "Create"}
	pattern, kind := "literal", "deny"
	if r.prefix {
		pattern = "prefix"
	}
	if r.allow {
		kind = "allow"
	}
	return fmt.Sprintf("  - principal: %s\n    resource: {type: %s, name: %s, patternType: %s}\n    operation: %s\n    type: %s\n",
		principal, types[r.res], r.name, pattern, ops[r.op], kind)
}

func writeACLFile(t *testing.T, principal string, rules []aclRule) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("acls:\n")
	for _, r := range rules {
		b.WriteString(r.yaml(principal))
	}
	f := filepath.Join(t.TempDir(), "acls.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// aclPair is the same principal twice: straight at a kfake cluster that
// enforces alice's ACLs, and through a proxy that enforces them in front
// of a kfake cluster it reaches as a super user.
type aclPair struct {
	direct, proxied *memkafka.Cluster
	proxy           *kafkatest.Proxy
}

func startACLPair(t *testing.T) aclPair {
	t.Helper()
	base := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1), kfake.EnableACLs(), kfake.Superuser("PLAIN", "admin", "admin-secret")}
	var acls []kfake.ACL
	for _, r := range aliceRules {
		acls = append(acls, r.kfake())
	}
	direct, err := memkafka.NewCluster(append(base, kfake.User("PLAIN", "alice", "alice-secret", acls...))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	proxied, err := memkafka.NewCluster(base...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxied.Close)
	users := kafkatest.WriteUsers(t, map[string]string{"alice": "alice-secret"})
	aclFile := writeACLFile(t, "User:alice", aliceRules)
	p := kafkatest.StartProxy(t, proxied.ListenAddrs(), func(cfg *config.Config) {
		cfg.Kafka.SASL = config.SASL{Enable: true, Method: "PLAIN", Username: "admin", Password: "admin-secret"}
		cfg.Auth.Local = config.LocalAuth{Enable: true, Mechanisms: []string{config.LocalPlain}, UsersFile: users}
		cfg.ACL.Files = []string{aclFile}
		cfg.ACL.SuperUsers = "User:admin"
	})
	t.Cleanup(func() { p.CheckNoBypass(t) })
	ctx := ctxT(t, 30*time.Second)
	for _, c := range []*memkafka.Cluster{direct, proxied} {
		admin := adminClient(t, c.ListenAddrs())
		if _, err := kadm.NewClient(admin).CreateTopics(ctx, 1, 1, nil, aclTopics...); err != nil {
			t.Fatalf("create topics: %v", err)
		}
	}
	return aclPair{direct, proxied, p}
}

func adminClient(t *testing.T, brokers []string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// clients are alice's franz-go clients on both sides, at versions vs.
func (a aclPair) clients(t *testing.T, vs *kversion.Versions, opts ...kgo.Opt) (direct, proxied *kgo.Client) {
	opts = append([]kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()), kgo.MaxVersions(vs),
		kgo.RequestRetries(0), kgo.RetryTimeout(2 * time.Second)}, opts...)
	d, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.direct.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, a.proxy.Client(t, opts...)
}

// TestACLEquivalence sends alice's requests to a broker enforcing her
// ACLs and through the proxy enforcing the same rules, and requires the
// same error codes, resource by resource, at the newest versions and at
// Kafka 2.4's (topics by name, old response shapes).
func TestACLEquivalence(t *testing.T) {
	a := startACLPair(t)
	for _, vs := range []struct {
		name string
		v    *kversion.Versions
	}{{"latest", kversion.Stable()}, {"2.4", kversion.V2_4_0()}} {
		t.Run(vs.name, func(t *testing.T) {
			direct, proxied := a.clients(t, vs.v)
			ctx := ctxT(t, 60*time.Second)
			for _, cl := range []*kgo.Client{direct, proxied} {
				if _, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil { // learns the broker
					t.Fatal(err)
				}
			}
			ids := topicIDs(ctx, t, adminClient(t, a.proxied.ListenAddrs()))
			idsDirect := topicIDs(ctx, t, adminClient(t, a.direct.ListenAddrs()))
			for _, tc := range aclSequences() {
				t.Run(tc.name, func(t *testing.T) {
					send := func(cl *kgo.Client, ids map[string][16]byte) []string {
						req := tc.req(ids)
						// Straight to the one broker: the client's own
						// sharding would ask Metadata first and stop there.
						resp, err := cl.Broker(0).Request(ctx, req)
						if err != nil {
							return []string{"error: " + err.Error()}
						}
						return kafkatest.ErrorCodes(resp)
					}
					want := send(direct, idsDirect)
					got := send(proxied, ids)
					if k, ok := tc.kafka[vs.name]; ok {
						t.Logf("kfake answers %q; Kafka (and the proxy) %q", want, k)
						want = k
					}
					t.Logf("broker and proxy: %q", want)
					if !slices.Equal(normalizeIDs(want, idsDirect), normalizeIDs(got, ids)) {
						t.Errorf("proxy and broker disagree\nbroker: %q\nproxy:  %q", want, got)
					}
				})
			}
		})
	}
}

// normalizeIDs writes topic ids as their names, since the two clusters
// give the same topic different ids.
func normalizeIDs(lines []string, ids map[string][16]byte) []string {
	out := slices.Clone(lines)
	for i := range out {
		for name, id := range ids {
			out[i] = strings.ReplaceAll(out[i], fmt.Sprint(id), "id("+name+")")
		}
	}
	return out
}

func topicIDs(ctx context.Context, t *testing.T, admin *kgo.Client) map[string][16]byte {
	td, err := kadm.NewClient(admin).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][16]byte{}
	for _, d := range td {
		ids[d.Topic] = d.ID
	}
	return ids
}

type aclSequence struct {
	name string
	req  func(ids map[string][16]byte) kmsg.Request
	// kafka is Kafka's answer, by version set, where kfake answers
	// differently; the proxy must give Kafka's.
	kafka map[string][]string
}

func metadataReq(auto bool, topics ...string) *kmsg.MetadataRequest {
	r := kmsg.NewPtrMetadataRequest()
	r.AllowAutoTopicCreation = auto
	for _, tp := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(tp)
		r.Topics = append(r.Topics, mt)
	}
	return r
}

func aclSequences() []aclSequence {
	all := []string{"allowed", "denied", "pub-news", "secret"}
	return []aclSequence{
		{name: "metadata named", req: func(map[string][16]byte) kmsg.Request { return metadataReq(false, append(all, "missing")...) }},
		{name: "metadata auto-create without Create", req: func(map[string][16]byte) kmsg.Request { return metadataReq(true, "allowed", "missing-2") }},
		{name: "metadata all topics", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrMetadataRequest()
			r.Topics = nil
			return r
		}},
		{name: "list offsets", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrListOffsetsRequest()
			for _, tp := range all {
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = tp
				p := kmsg.NewListOffsetsRequestTopicPartition()
				p.Timestamp = -1
				rt.Partitions = append(rt.Partitions, p)
				r.Topics = append(r.Topics, rt)
			}
			return r
		}},
		{name: "fetch", req: func(ids map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrFetchRequest()
			r.MaxWaitMillis, r.MinBytes, r.MaxBytes = 10, 1, 1<<20
			for _, tp := range []string{"allowed", "pub-news", "secret"} {
				ft := kmsg.NewFetchRequestTopic()
				ft.Topic, ft.TopicID = tp, ids[tp]
				p := kmsg.NewFetchRequestTopicPartition()
				p.PartitionMaxBytes = 1 << 20
				ft.Partitions = append(ft.Partitions, p)
				r.Topics = append(r.Topics, ft)
			}
			return r
		}},
		{name: "offset for leader epoch", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrOffsetForLeaderEpochRequest()
			for _, tp := range all {
				rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
				rt.Topic = tp
				p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				p.CurrentLeaderEpoch, p.LeaderEpoch = -1, 0
				rt.Partitions = append(rt.Partitions, p)
				r.Topics = append(r.Topics, rt)
			}
			return r
		}},
		{name: "offset commit allowed group", req: func(ids map[string][16]byte) kmsg.Request {
			return offsetCommit("g-ok", ids, "allowed", "denied", "pub-news")
		}},
		{name: "offset commit denied group", req: func(ids map[string][16]byte) kmsg.Request { return offsetCommit("g-no", ids, "allowed", "denied") }},
		// Kafka also answers TOPIC_AUTHORIZATION_FAILED for a topic the
		// principal may not describe; kfake does not check topics here
		// (the policy tests check the proxy's answer).
		{name: "offset fetch", req: func(ids map[string][16]byte) kmsg.Request { return offsetFetch("g-ok", ids, "allowed", "pub-news") }},
		{name: "offset fetch denied group", req: func(ids map[string][16]byte) kmsg.Request { return offsetFetch("g-no", ids, "allowed") }},
		{name: "find coordinator group", req: func(map[string][16]byte) kmsg.Request { return findCoordinator(0, "g-ok") }},
		{name: "find coordinator denied group", req: func(map[string][16]byte) kmsg.Request { return findCoordinator(0, "g-no") }},
		{name: "find coordinator denied txn", req: func(map[string][16]byte) kmsg.Request { return findCoordinator(1, "tx-no") }},
		{name: "describe groups", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.Groups = []string{"g-ok", "g-no"}
			return r
		}},
		{name: "join denied group", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrJoinGroupRequest()
			r.Group, r.ProtocolType, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = "g-no", "consumer", 10000, 10000
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name = "range"
			r.Protocols = append(r.Protocols, p)
			return r
		}},
		{name: "create topics", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrCreateTopicsRequest()
			for _, tp := range []string{"new-topic", "se-new"} {
				ct := kmsg.NewCreateTopicsRequestTopic()
				ct.Topic, ct.NumPartitions, ct.ReplicationFactor = tp, 1, 1
				r.Topics = append(r.Topics, ct)
			}
			r.ValidateOnly = true
			return r
		}},
		{name: "delete topics", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrDeleteTopicsRequest()
			r.TopicNames = []string{"allowed", "denied"}
			for _, tp := range r.TopicNames {
				dt := kmsg.NewDeleteTopicsRequestTopic()
				dt.Topic = kmsg.StringPtr(tp)
				r.Topics = append(r.Topics, dt)
			}
			return r
		}},
		{name: "create partitions", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrCreatePartitionsRequest()
			ct := kmsg.NewCreatePartitionsRequestTopic()
			ct.Topic, ct.Count = "allowed", 2
			r.Topics = append(r.Topics, ct)
			r.ValidateOnly = true
			return r
		}},
		{name: "delete records", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrDeleteRecordsRequest()
			dt := kmsg.NewDeleteRecordsRequestTopic()
			dt.Topic = "allowed"
			p := kmsg.NewDeleteRecordsRequestTopicPartition()
			p.Offset = 0
			dt.Partitions = append(dt.Partitions, p)
			r.Topics = append(r.Topics, dt)
			return r
		}},
		{name: "init producer id idempotent", req: func(map[string][16]byte) kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() }},
		{name: "init producer id denied txn", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrInitProducerIDRequest()
			r.TransactionalID, r.TransactionTimeoutMillis = kmsg.StringPtr("tx-no"), 10000
			return r
		}},
		{name: "describe configs", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrDescribeConfigsRequest()
			for _, x := range []struct {
				t    kmsg.ConfigResourceType
				name string
			}{{kmsg.ConfigResourceTypeTopic, "allowed"}, {kmsg.ConfigResourceTypeTopic, "secret"}} {
				rr := kmsg.NewDescribeConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = x.t, x.name
				r.Resources = append(r.Resources, rr)
			}
			return r
		}},
		{name: "delete groups", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrDeleteGroupsRequest()
			r.Groups = []string{"g-ok", "g-no"}
			return r
		}},
		// v4+ is the brokers' batched form: Kafka requires ClusterAction;
		// kfake checks nothing. Clients' v0-v3: one denied topic fails the
		// rest with OPERATION_NOT_ATTEMPTED in Kafka; kfake fails them
		// with the denied topic's code.
		{name: "add partitions to txn, denied txn", req: func(map[string][16]byte) kmsg.Request { return addPartitionsToTxn("tx-no", "allowed") },
			kafka: map[string][]string{"latest": {"/: CLUSTER_AUTHORIZATION_FAILED"}}},
		{name: "add partitions to txn, denied topic", req: func(map[string][16]byte) kmsg.Request { return addPartitionsToTxn("tx-ok", "allowed", "denied") },
			kafka: map[string][]string{"latest": {"/: CLUSTER_AUTHORIZATION_FAILED"},
				"2.4": {"//Topic=allowed/Partition=0: OPERATION_NOT_ATTEMPTED", "//Topic=denied/Partition=0: TOPIC_AUTHORIZATION_FAILED", "/: OK"}}},
		{name: "add offsets to txn, denied group", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrAddOffsetsToTxnRequest()
			r.TransactionalID, r.Group, r.ProducerID = "tx-ok", "g-no", 1
			return r
		}},
		{name: "add offsets to txn, denied txn", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrAddOffsetsToTxnRequest()
			r.TransactionalID, r.Group, r.ProducerID = "tx-no", "g-ok", 1
			return r
		}},
		{name: "end txn, denied txn", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrEndTxnRequest()
			r.TransactionalID, r.ProducerID = "tx-no", 1
			return r
		}},
		{name: "txn offset commit, denied txn", req: func(ids map[string][16]byte) kmsg.Request { return txnOffsetCommit("tx-no", "g-ok", ids, "allowed") }},
		{name: "txn offset commit, denied group", req: func(ids map[string][16]byte) kmsg.Request { return txnOffsetCommit("tx-ok", "g-no", ids, "allowed") }},
		{name: "describe cluster", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrDescribeClusterRequest()
			r.IncludeClusterAuthorizedOperations = true
			return r
		}},
		{name: "create acls", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrCreateACLsRequest()
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "allowed", kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
			r.Creations = append(r.Creations, c)
			return r
		}},
		{name: "describe acls", req: func(map[string][16]byte) kmsg.Request {
			r := kmsg.NewPtrDescribeACLsRequest()
			r.ResourceType, r.ResourcePatternType, r.Operation, r.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return r
		}},
	}
}

func offsetCommit(group string, ids map[string][16]byte, topics ...string) kmsg.Request {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Group, r.Generation = group, -1
	for _, tp := range topics {
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic, ct.TopicID = tp, ids[tp]
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Offset = 0
		ct.Partitions = append(ct.Partitions, p)
		r.Topics = append(r.Topics, ct)
	}
	return r
}

func offsetFetch(group string, ids map[string][16]byte, topics ...string) kmsg.Request {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Group = group
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	for _, tp := range topics {
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = tp, []int32{0}
		r.Topics = append(r.Topics, ft)
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.TopicID, gt.Partitions = tp, ids[tp], []int32{0}
		g.Topics = append(g.Topics, gt)
	}
	r.Groups = append(r.Groups, g)
	return r
}

func addPartitionsToTxn(id string, topics ...string) kmsg.Request {
	r := kmsg.NewPtrAddPartitionsToTxnRequest()
	r.TransactionalID, r.ProducerID = id, 1
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID = id, 1
	for _, tp := range topics {
		t := kmsg.NewAddPartitionsToTxnRequestTopic()
		t.Topic, t.Partitions = tp, []int32{0}
		r.Topics = append(r.Topics, t)
		tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tt.Topic, tt.Partitions = tp, []int32{0}
		tx.Topics = append(tx.Topics, tt)
	}
	r.Transactions = append(r.Transactions, tx)
	return r
}

func txnOffsetCommit(id, group string, ids map[string][16]byte, topics ...string) kmsg.Request {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.TransactionalID, r.Group, r.ProducerID, r.Generation = id, group, 1, -1
	for _, tp := range topics {
		t := kmsg.NewTxnOffsetCommitRequestTopic()
		t.Topic, t.TopicID = tp, ids[tp]
		p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	}
	return r
}

func findCoordinator(keyType int8, key string) kmsg.Request {
	r := kmsg.NewPtrFindCoordinatorRequest()
	r.CoordinatorType, r.CoordinatorKey, r.CoordinatorKeys = keyType, key, []string{key}
	return r
}

// TestACLMetadataV0to3NoAutoCreate: Metadata v0–3 cannot ask the broker not
// to create a topic, so the proxy asks at v4 with allow_auto_topic_creation
// false and answers the client at its own version. alice (Describe on
// pub-*, no Create) at Kafka 0.10.2's versions (Metadata v2): an existing
// topic is described, a missing one is TOPIC_AUTHORIZATION_FAILED, and the
// broker does not create it.
func TestACLMetadataV0to3NoAutoCreate(t *testing.T) {
	a := startACLPair(t)
	_, proxied := a.clients(t, kversion.V0_10_2())
	ctx := ctxT(t, 30*time.Second)
	// What reaches the broker: the request naming pub-missing must say
	// "do not create", which only v4+ can.
	var mu sync.Mutex
	var seen []string
	a.proxied.ControlKey(kmsg.Metadata.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		a.proxied.KeepControl()
		m := r.(*kmsg.MetadataRequest)
		for _, tp := range m.Topics {
			if tp.Topic != nil && *tp.Topic == "pub-missing" {
				mu.Lock()
				seen = append(seen, fmt.Sprintf("v%d auto=%v", m.Version, m.AllowAutoTopicCreation))
				mu.Unlock()
			}
		}
		return nil, nil, false
	})
	req := metadataReq(false, "pub-news", "pub-missing")
	req.Version = 2
	resp, err := proxied.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	m := resp.(*kmsg.MetadataResponse)
	if m.Version != 2 {
		t.Fatalf("answered at v%d, want the client's v2", m.Version)
	}
	got := map[string]int16{}
	for _, tp := range m.Topics {
		got[*tp.Topic] = tp.ErrorCode
		if *tp.Topic == "pub-news" && len(tp.Partitions) != 1 {
			t.Errorf("pub-news: %d partitions", len(tp.Partitions))
		}
	}
	if got["pub-news"] != 0 || got["pub-missing"] != kerr.TopicAuthorizationFailed.Code || len(got) != 2 {
		t.Fatalf("error codes %v", got)
	}
	if n := a.proxy.MetricSum(t, "proxy_acl_denials_total", func(l map[string]string) bool { return l["resource_type"] == "TOPIC" }); n < 1 {
		t.Errorf("proxy_acl_denials_total{resource_type=TOPIC} = %v after a denied topic", n)
	}
	listed, err := kadm.NewClient(adminClient(t, a.proxied.ListenAddrs())).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listed.Has("pub-missing") {
		t.Fatal("the broker created a topic alice may not create")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "v4 auto=false" {
		t.Fatalf("the broker saw %q, want one v4 request with auto-creation off", seen)
	}
}
