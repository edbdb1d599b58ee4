package rewrite

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testMapper maps broker N, advertised as b-N:9092+N, to 127.0.0.1:40000+N.
// Anything else is an error, so a rewriter that hands it the wrong field
// (or an errored coordinator) fails the test.
type testMapper struct{ calls *int }

func (m testMapper) MapBroker(id int32, host string, port int32) (string, int32, error) {
	if m.calls != nil {
		*m.calls++
	}
	if host != fmt.Sprintf("b-%d", id) || port != 9092+id {
		return "", 0, fmt.Errorf("test mapper: unexpected broker %d at %s:%d", id, host, port)
	}
	return "127.0.0.1", 40000 + id, nil
}

// identityMapper returns every address as it is: nothing may change.
type identityMapper struct{ calls *int }

func (m identityMapper) MapBroker(_ int32, host string, port int32) (string, int32, error) {
	*m.calls++
	return host, port, nil
}

var errBoom = errors.New("boom")

type errMapper struct{}

func (errMapper) MapBroker(int32, string, int32) (string, int32, error) { return "", 0, errBoom }

// addr points at one address inside a decoded response.
type addr struct {
	id   int32
	host *string
	port *int32
}

// rewriteCase describes one rewritten key for the table tests. build makes a
// response with brokers b-1..b-3 (and non-address data that must survive);
// addrs is the test's own, independent list of the addresses the rewriter
// must map at that response's version.
type rewriteCase struct {
	key        int16
	minVersion int16
	build      func(v int16) kmsg.Response
	addrs      func(r kmsg.Response) []addr
}

func str(s string) *string { return &s }

var topicID = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

func rewriteCases() []rewriteCase {
	return []rewriteCase{
		{key: 0, minVersion: 10, build: buildProduce, addrs: func(r kmsg.Response) (a []addr) {
			for i := range r.(*kmsg.ProduceResponse).Brokers {
				b := &r.(*kmsg.ProduceResponse).Brokers[i]
				a = append(a, addr{b.NodeID, &b.Host, &b.Port})
			}
			return a
		}},
		{key: 1, minVersion: 16, build: buildFetch, addrs: func(r kmsg.Response) (a []addr) {
			for i := range r.(*kmsg.FetchResponse).Brokers {
				b := &r.(*kmsg.FetchResponse).Brokers[i]
				a = append(a, addr{b.NodeID, &b.Host, &b.Port})
			}
			return a
		}},
		{key: 3, build: buildMetadata, addrs: func(r kmsg.Response) (a []addr) {
			for i := range r.(*kmsg.MetadataResponse).Brokers {
				b := &r.(*kmsg.MetadataResponse).Brokers[i]
				a = append(a, addr{b.NodeID, &b.Host, &b.Port})
			}
			return a
		}},
		{key: 10, build: buildFindCoordinator, addrs: func(r kmsg.Response) (a []addr) {
			resp := r.(*kmsg.FindCoordinatorResponse)
			if resp.Version <= 3 {
				return []addr{{resp.NodeID, &resp.Host, &resp.Port}}
			}
			for i := range resp.Coordinators {
				if c := &resp.Coordinators[i]; c.ErrorCode == 0 {
					a = append(a, addr{c.NodeID, &c.Host, &c.Port})
				}
			}
			return a
		}},
		{key: 60, build: buildDescribeCluster, addrs: func(r kmsg.Response) (a []addr) {
			for i := range r.(*kmsg.DescribeClusterResponse).Brokers {
				b := &r.(*kmsg.DescribeClusterResponse).Brokers[i]
				a = append(a, addr{b.NodeID, &b.Host, &b.Port})
			}
			return a
		}},
		{key: 78, build: buildShareFetch, addrs: func(r kmsg.Response) (a []addr) {
			for i := range r.(*kmsg.ShareFetchResponse).NodeEndpoints {
				e := &r.(*kmsg.ShareFetchResponse).NodeEndpoints[i]
				a = append(a, addr{e.NodeID, &e.Host, &e.Port})
			}
			return a
		}},
		{key: 79, build: buildShareAcknowledge, addrs: func(r kmsg.Response) (a []addr) {
			for i := range r.(*kmsg.ShareAcknowledgeResponse).NodeEndpoints {
				e := &r.(*kmsg.ShareAcknowledgeResponse).NodeEndpoints[i]
				a = append(a, addr{e.NodeID, &e.Host, &e.Port})
			}
			return a
		}},
	}
}

func buildProduce(v int16) kmsg.Response {
	r := kmsg.NewPtrProduceResponse()
	r.SetVersion(v)
	r.ThrottleMillis = 7
	p := kmsg.NewProduceResponseTopicPartition()
	p.Partition, p.ErrorCode, p.BaseOffset = 2, 6, 100
	p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 3, 5
	r.Topics = []kmsg.ProduceResponseTopic{{Topic: "t", TopicID: topicID, Partitions: []kmsg.ProduceResponseTopicPartition{p}}}
	for id := int32(1); id <= 3; id++ {
		r.Brokers = append(r.Brokers, kmsg.ProduceResponseBroker{NodeID: id, Host: fmt.Sprintf("b-%d", id), Port: 9092 + id, Rack: str("r")})
	}
	return r
}

func buildFetch(v int16) kmsg.Response {
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(v)
	r.ThrottleMillis, r.SessionID = 7, 9
	p := kmsg.NewFetchResponseTopicPartition()
	p.Partition, p.ErrorCode, p.HighWatermark = 1, 6, 100
	p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 2, 4
	p.RecordBatches = []byte{1, 2, 3, 4, 5}
	r.Topics = []kmsg.FetchResponseTopic{{Topic: "t", TopicID: topicID, Partitions: []kmsg.FetchResponseTopicPartition{p}}}
	for id := int32(1); id <= 3; id++ {
		r.Brokers = append(r.Brokers, kmsg.FetchResponseBroker{NodeID: id, Host: fmt.Sprintf("b-%d", id), Port: 9092 + id})
	}
	return r
}

func buildMetadata(v int16) kmsg.Response {
	r := kmsg.NewPtrMetadataResponse()
	r.SetVersion(v)
	r.ThrottleMillis, r.ClusterID, r.ControllerID = 7, str("cluster"), 2
	for id := int32(1); id <= 3; id++ {
		r.Brokers = append(r.Brokers, kmsg.MetadataResponseBroker{NodeID: id, Host: fmt.Sprintf("b-%d", id), Port: 9092 + id, Rack: str("rack")})
	}
	p := kmsg.NewMetadataResponseTopicPartition()
	p.Partition, p.Leader, p.LeaderEpoch = 0, 2, 3
	p.Replicas, p.ISR = []int32{1, 2, 3}, []int32{2, 3}
	t := kmsg.NewMetadataResponseTopic()
	t.Topic, t.TopicID, t.Partitions = str("orders"), topicID, []kmsg.MetadataResponseTopicPartition{p}
	r.Topics = []kmsg.MetadataResponseTopic{t}
	return r
}

func buildFindCoordinator(v int16) kmsg.Response {
	r := kmsg.NewPtrFindCoordinatorResponse()
	r.SetVersion(v)
	r.ThrottleMillis = 7
	if v <= 3 {
		r.NodeID, r.Host, r.Port = 2, "b-2", 9094
		return r
	}
	r.Coordinators = []kmsg.FindCoordinatorResponseCoordinator{
		{Key: "g1", NodeID: 1, Host: "b-1", Port: 9093},
		{Key: "g2", NodeID: -1, Host: "", Port: -1, ErrorCode: 15, ErrorMessage: str("not available")},
		{Key: "g3", NodeID: 3, Host: "b-3", Port: 9095},
	}
	return r
}

func buildDescribeCluster(v int16) kmsg.Response {
	r := kmsg.NewPtrDescribeClusterResponse()
	r.SetVersion(v)
	r.ThrottleMillis, r.ClusterID, r.ControllerID, r.ClusterAuthorizedOperations = 7, "cluster", 3, 42
	r.EndpointType = 1
	for id := int32(1); id <= 3; id++ {
		r.Brokers = append(r.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: id, Host: fmt.Sprintf("b-%d", id), Port: 9092 + id, Rack: str("rack"), IsFenced: id == 3})
	}
	return r
}

func buildShareFetch(v int16) kmsg.Response {
	r := kmsg.NewPtrShareFetchResponse()
	r.SetVersion(v)
	r.ThrottleMillis, r.AcquisitionLockTimeoutMillis = 7, 30000
	p := kmsg.NewShareFetchResponseTopicPartition()
	p.Partition, p.ErrorCode, p.Records = 1, 6, []byte{9, 9, 9}
	p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 2, 4
	r.Topics = []kmsg.ShareFetchResponseTopic{{TopicID: topicID, Partitions: []kmsg.ShareFetchResponseTopicPartition{p}}}
	for id := int32(1); id <= 3; id++ {
		r.NodeEndpoints = append(r.NodeEndpoints, kmsg.ShareFetchResponseNodeEndpoint{NodeID: id, Host: fmt.Sprintf("b-%d", id), Port: 9092 + id})
	}
	return r
}

func buildShareAcknowledge(v int16) kmsg.Response {
	r := kmsg.NewPtrShareAcknowledgeResponse()
	r.SetVersion(v)
	r.ThrottleMillis = 7
	p := kmsg.NewShareAcknowledgeResponseTopicPartition()
	p.Partition, p.ErrorCode = 1, 6
	p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 2, 4
	r.Topics = []kmsg.ShareAcknowledgeResponseTopic{{TopicID: topicID, Partitions: []kmsg.ShareAcknowledgeResponseTopicPartition{p}}}
	for id := int32(1); id <= 3; id++ {
		r.NodeEndpoints = append(r.NodeEndpoints, kmsg.ShareAcknowledgeResponseNodeEndpoint{NodeID: id, Host: fmt.Sprintf("b-%d", id), Port: 9092 + id})
	}
	return r
}

// encode encodes r; for flexible versions it first adds an unknown top-level
// tag, which a rewrite must carry through like any other field.
func encode(r kmsg.Response) []byte {
	if r.IsFlexible() {
		reflect.ValueOf(r).Elem().FieldByName("UnknownTags").Addr().Interface().(*kmsg.Tags).Set(99, []byte("future"))
	}
	return r.AppendTo(nil)
}

func decodeAt(t *testing.T, key, v int16, body []byte) kmsg.Response {
	t.Helper()
	r := kmsg.ResponseForKey(key)
	r.SetVersion(v)
	if err := r.ReadFrom(body); err != nil {
		t.Fatalf("decode %s v%d: %v", kmsg.NameForKey(key), v, err)
	}
	return r
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// TestResponseRewritesEveryVersion round-trips every rewritten key at every
// version kmsg knows: encode, rewrite, decode, and compare with the input
// whose addresses the test mapped itself. Everything else must be equal.
func TestResponseRewritesEveryVersion(t *testing.T) {
	for _, c := range rewriteCases() {
		maxV := kmsg.ResponseForKey(c.key).MaxVersion()
		for v := int16(0); v <= maxV; v++ {
			t.Run(fmt.Sprintf("%s/v%d", kmsg.NameForKey(c.key), v), func(t *testing.T) {
				body := encode(c.build(v))
				out, changed, err := response(t, c.key, v, body, testMapper{})
				if err != nil {
					t.Fatalf("Response: %v", err)
				}
				if v < c.minVersion {
					if changed || !sameSlice(out, body) {
						t.Fatalf("v%d carries no address: want the body back unchanged, got changed=%v", v, changed)
					}
					return
				}
				if !changed || sameSlice(out, body) {
					t.Fatalf("want a rewritten copy, got changed=%v same=%v", changed, sameSlice(out, body))
				}
				want := decodeAt(t, c.key, v, body)
				wantAddrs := c.addrs(want)
				if len(wantAddrs) == 0 {
					t.Fatalf("test builder put no addresses into v%d", v)
				}
				for _, a := range wantAddrs {
					*a.host, *a.port = "127.0.0.1", 40000+a.id
				}
				got := decodeAt(t, c.key, v, out)
				gotAddrs := c.addrs(got)
				if len(gotAddrs) != len(wantAddrs) {
					t.Fatalf("got %d addresses, want %d", len(gotAddrs), len(wantAddrs))
				}
				for _, a := range gotAddrs {
					if *a.host != "127.0.0.1" || *a.port != 40000+a.id {
						t.Errorf("node %d: got %s:%d, want 127.0.0.1:%d", a.id, *a.host, *a.port, 40000+a.id)
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("decoded output differs beyond addresses:\n got %+v\nwant %+v", got, want)
				}
			})
		}
	}
}

// TestResponseUnchanged: with a mapper that returns every address as it is,
// Response must hand back the very same slice and changed=false, after
// having looked at every address.
func TestResponseUnchanged(t *testing.T) {
	for _, c := range rewriteCases() {
		maxV := kmsg.ResponseForKey(c.key).MaxVersion()
		for v := c.minVersion; v <= maxV; v++ {
			body := encode(c.build(v))
			calls := 0
			out, changed, err := response(t, c.key, v, body, identityMapper{&calls})
			name := fmt.Sprintf("%s v%d", kmsg.NameForKey(c.key), v)
			if err != nil || changed || !sameSlice(out, body) {
				t.Errorf("%s: got changed=%v same=%v err=%v, want the body back", name, changed, sameSlice(out, body), err)
			}
			if want := len(c.addrs(c.build(v))); calls != want {
				t.Errorf("%s: mapper called %d times, want %d", name, calls, want)
			}
		}
	}
}

// TestResponseNoBrokers: KIP-951 brokers are only sent with leader errors;
// without them there is nothing to map and nothing to re-encode.
func TestResponseNoBrokers(t *testing.T) {
	p := buildProduce(13).(*kmsg.ProduceResponse)
	p.Brokers = nil
	f := buildFetch(18).(*kmsg.FetchResponse)
	f.Brokers = nil
	for _, r := range []kmsg.Response{p, f} {
		body := encode(r)
		out, changed, err := response(t, r.Key(), r.GetVersion(), body, errMapper{})
		if err != nil || changed || !sameSlice(out, body) {
			t.Errorf("%s: got changed=%v err=%v, want the body back", kmsg.NameForKey(r.Key()), changed, err)
		}
	}
}

// TestFindCoordinatorErrored: an errored v0–v3 answer has node -1 and no
// host; the test mapper would fail on it, so passing proves it is skipped.
func TestFindCoordinatorErrored(t *testing.T) {
	for v := int16(0); v <= 3; v++ {
		r := kmsg.NewPtrFindCoordinatorResponse()
		r.SetVersion(v)
		r.ErrorCode, r.ErrorMessage, r.NodeID, r.Host, r.Port = 15, str("loading"), -1, "", -1
		body := encode(r)
		out, changed, err := response(t, 10, v, body, testMapper{})
		if err != nil || changed || !sameSlice(out, body) {
			t.Errorf("v%d: got changed=%v err=%v, want the body back", v, changed, err)
		}
	}
	// v4+: the errored entry keeps its fields, the others are mapped.
	out, _, err := response(t, 10, 6, encode(buildFindCoordinator(6)), testMapper{})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeAt(t, 10, 6, out).(*kmsg.FindCoordinatorResponse).Coordinators
	if len(got) != 3 || got[1].Key != "g2" || got[1].NodeID != -1 || got[1].Host != "" || got[1].Port != -1 ||
		got[1].ErrorCode != 15 || got[1].ErrorMessage == nil || *got[1].ErrorMessage != "not available" {
		t.Fatalf("errored coordinator changed: %+v", got)
	}
	if got[0].Host != "127.0.0.1" || got[0].Port != 40001 || got[2].Port != 40003 {
		t.Fatalf("coordinators not mapped: %+v", got)
	}
}

// TestMetadataKeepsTopics spells out, for the most common response, the
// non-address fields the DeepEqual in the round-trip test covers.
func TestMetadataKeepsTopics(t *testing.T) {
	out, _, err := response(t, 3, 12, encode(buildMetadata(12)), testMapper{})
	if err != nil {
		t.Fatal(err)
	}
	r := decodeAt(t, 3, 12, out).(*kmsg.MetadataResponse)
	if r.ThrottleMillis != 7 || r.ControllerID != 2 || r.ClusterID == nil || *r.ClusterID != "cluster" {
		t.Errorf("top-level fields lost: %+v", r)
	}
	if len(r.Topics) != 1 || *r.Topics[0].Topic != "orders" || r.Topics[0].TopicID != topicID {
		t.Fatalf("topics lost: %+v", r.Topics)
	}
	p := r.Topics[0].Partitions
	if len(p) != 1 || p[0].Leader != 2 || p[0].LeaderEpoch != 3 || !reflect.DeepEqual(p[0].ISR, []int32{2, 3}) {
		t.Errorf("partitions lost: %+v", p)
	}
	if r.Brokers[1].Rack == nil || *r.Brokers[1].Rack != "rack" {
		t.Errorf("rack lost: %+v", r.Brokers[1])
	}
	var tag []byte
	r.UnknownTags.Each(func(k uint32, v []byte) {
		if k == 99 {
			tag = v
		}
	})
	if string(tag) != "future" {
		t.Errorf("unknown tag lost: %q", tag)
	}
}

func TestMapperErrorPropagates(t *testing.T) {
	for _, c := range rewriteCases() {
		v := kmsg.ResponseForKey(c.key).MaxVersion()
		out, changed, err := response(t, c.key, v, encode(c.build(v)), errMapper{})
		if !errors.Is(err, errBoom) || out != nil || changed {
			t.Errorf("%s: got out=%d bytes changed=%v err=%v, want errBoom", kmsg.NameForKey(c.key), len(out), changed, err)
		}
		if err != nil && !strings.Contains(err.Error(), "b-1:9093") {
			t.Errorf("%s: error lacks the broker address: %v", kmsg.NameForKey(c.key), err)
		}
	}
}

// TestDecodeError: a body cut short by one byte must be an error, never a
// panic or a silently passed response.
func TestDecodeError(t *testing.T) {
	for _, c := range rewriteCases() {
		maxV := kmsg.ResponseForKey(c.key).MaxVersion()
		for v := c.minVersion; v <= maxV; v++ {
			body := encode(c.build(v))
			_, _, err := response(t, c.key, v, body[:len(body)-1], testMapper{})
			if err == nil || !strings.HasPrefix(err.Error(), "decode: ") {
				t.Errorf("%s v%d: truncated body: got err=%v", kmsg.NameForKey(c.key), v, err)
			}
		}
	}
}

// TestPassThroughKeys: keys outside the table are returned untouched and
// not even decoded (the garbage body would fail to decode).
func TestPassThroughKeys(t *testing.T) {
	garbage := []byte{0xff, 0xff, 0xff}
	for _, kv := range [][2]int16{{0, 9}, {1, 15}, {2, 5}, {55, 2}, {9999, 0}} {
		out, changed, err := response(t, kv[0], kv[1], garbage, errMapper{})
		if err != nil || changed || !sameSlice(out, garbage) {
			t.Errorf("key %d v%d: got changed=%v err=%v, want passthrough", kv[0], kv[1], changed, err)
		}
	}
}
