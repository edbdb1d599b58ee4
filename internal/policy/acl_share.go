package policy

import (
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// maxShareSessions bounds the share sessions remembered: past it, the map
// starts over, and the partitions of sessions opened before are no longer
// re-checked (those named again still are).
const maxShareSessions = 1 << 16

// shareKey names a share session (KIP-932) as its broker does: the group
// and member, at one broker.
type shareKey struct{ broker, group, member string }

// shareSessions remembers the partitions each share session holds at its
// broker. Unlike a fetch session, a share session cannot be turned off,
// and later requests do not name the partitions it holds; a broker
// re-checks them at every fetch, so the proxy does too, and has the
// broker forget those the principal may no longer read.
type shareSessions struct {
	mu sync.Mutex
	m  map[shareKey]map[[16]byte][]int32
}

func newShareSessions() *shareSessions {
	return &shareSessions{m: make(map[shareKey]map[[16]byte][]int32)}
}

// held is a copy of the partitions the session holds before a request at
// epoch: none for a new session (epoch 0).
func (s *shareSessions) held(k shareKey, epoch int32) map[[16]byte][]int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch == 0 {
		delete(s.m, k)
		return nil
	}
	out := make(map[[16]byte][]int32, len(s.m[k]))
	for id, ps := range s.m[k] {
		out[id] = slices.Clone(ps)
	}
	return out
}

// update records what a forwarded ShareFetch adds to and removes from the
// session; the final fetch (epoch -1) ends it.
func (s *shareSessions) update(k shareKey, epoch int32, added []kmsg.ShareFetchRequestTopic, forgotten []kmsg.ShareFetchRequestForgottenTopicsData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch == -1 {
		delete(s.m, k)
		return
	}
	held := s.m[k]
	if held == nil {
		if len(s.m) >= maxShareSessions {
			s.m = make(map[shareKey]map[[16]byte][]int32)
		}
		held = make(map[[16]byte][]int32)
		s.m[k] = held
	}
	for _, t := range added {
		for _, p := range t.Partitions {
			if !slices.Contains(held[t.TopicID], p.Partition) {
				held[t.TopicID] = append(held[t.TopicID], p.Partition)
			}
		}
	}
	for _, f := range forgotten {
		held[f.TopicID] = slices.DeleteFunc(held[f.TopicID], func(p int32) bool { return slices.Contains(f.Partitions, p) })
		if len(held[f.TopicID]) == 0 {
			delete(held, f.TopicID)
		}
	}
}

func (c *check) shareKey(group string, member *string) shareKey {
	return shareKey{broker: c.ex.Client.Broker, group: group, member: deref(member)}
}

// shareFetch needs Read on the share group (else the whole request fails,
// as in Kafka) and on each topic. A denied topic is taken out of the
// request, so it never joins the broker's session, and answered with
// TOPIC_AUTHORIZATION_FAILED; a topic the session holds that the
// principal may no longer read is forgotten at the broker and answered
// the same. The rest is forwarded, so the session's epochs stay in step.
func (c *check) shareFetch(ex *pipeline.Exchange, r *kmsg.ShareFetchRequest) pipeline.Verdict {
	if r.GroupID == nil || !c.group(*r.GroupID, opRead) {
		return wholeError(r, kerr.GroupAuthorizationFailed)
	}
	key := c.shareKey(*r.GroupID, r.MemberID)
	held := c.shares.held(key, r.ShareSessionEpoch)
	yes, no := sift(r.Topics, func(t *kmsg.ShareFetchRequestTopic) int16 { return c.topicCode("", t.TopicID, opRead) })
	// Held partitions the principal may no longer read leave the session:
	// those the request names are answered with the denials above, the
	// others (revoked) beside them.
	var forget, revoked []kmsg.ShareFetchRequestForgottenTopicsData
	for id, parts := range held {
		f := kmsg.NewShareFetchRequestForgottenTopicsData()
		f.TopicID, f.Partitions = id, parts
		switch {
		case slices.ContainsFunc(no, func(d denial[kmsg.ShareFetchRequestTopic]) bool { return d.item.TopicID == id }):
			forget = append(forget, f)
		case !slices.ContainsFunc(r.Topics, func(t kmsg.ShareFetchRequestTopic) bool { return t.TopicID == id }) &&
			c.topicCode("", id, opRead) != 0:
			forget, revoked = append(forget, f), append(revoked, f)
		}
	}
	byID := func(a, b kmsg.ShareFetchRequestForgottenTopicsData) int {
		return slices.Compare(a.TopicID[:], b.TopicID[:])
	}
	slices.SortFunc(forget, byID)
	slices.SortFunc(revoked, byID)
	r.Topics = yes
	r.ForgottenTopicsData = append(r.ForgottenTopicsData, forget...)
	c.shares.update(key, r.ShareSessionEpoch, yes, r.ForgottenTopicsData)
	if len(no) == 0 && len(forget) == 0 {
		return pipeline.Pass()
	}
	if len(yes) == 0 {
		r.MaxWaitMillis = 0 // nothing new to wait for: the denials are answered at once
	}
	ex.Replace(r)
	ex.After(func(resp kmsg.Response) {
		f := resp.(*kmsg.ShareFetchResponse)
		for _, d := range no {
			t := kmsg.NewShareFetchResponseTopic()
			t.TopicID = d.item.TopicID
			for _, p := range d.item.Partitions {
				rp := kmsg.NewShareFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				if len(p.AcknowledgementBatches) > 0 {
					rp.AcknowledgeErrorCode = d.code
				}
				t.Partitions = append(t.Partitions, rp)
			}
			f.Topics = append(f.Topics, t)
		}
		for _, g := range revoked {
			t := kmsg.NewShareFetchResponseTopic()
			t.TopicID = g.TopicID
			for _, p := range g.Partitions {
				rp := kmsg.NewShareFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, errTopic
				t.Partitions = append(t.Partitions, rp)
			}
			f.Topics = append(f.Topics, t)
		}
	})
	return pipeline.Pass()
}

// shareAcknowledge needs Read on the share group and on each topic it
// acknowledges records of. The acknowledgements of a denied topic are
// taken out and answered with its error; the rest is forwarded, even
// empty, so that the session's epoch advances as the client counts it.
func (c *check) shareAcknowledge(ex *pipeline.Exchange, r *kmsg.ShareAcknowledgeRequest) pipeline.Verdict {
	if r.GroupID == nil || !c.group(*r.GroupID, opRead) {
		return wholeError(r, kerr.GroupAuthorizationFailed)
	}
	if r.ShareSessionEpoch == -1 {
		c.shares.update(c.shareKey(*r.GroupID, r.MemberID), -1, nil, nil)
	}
	yes, no := sift(r.Topics, func(t *kmsg.ShareAcknowledgeRequestTopic) int16 { return c.topicCode("", t.TopicID, opRead) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	r.Topics = yes
	ex.Replace(r)
	ex.After(func(resp kmsg.Response) {
		a := resp.(*kmsg.ShareAcknowledgeResponse)
		for _, d := range no {
			t := kmsg.NewShareAcknowledgeResponseTopic()
			t.TopicID = d.item.TopicID
			for _, p := range d.item.Partitions {
				rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			a.Topics = append(a.Topics, t)
		}
	})
	return pipeline.Pass()
}

// describeShareGroupOffsets needs Describe on each group and on each
// topic, as OffsetFetch does: a denied group is answered
// GROUP_AUTHORIZATION_FAILED and left out of the forwarded request, a
// denied topic TOPIC_AUTHORIZATION_FAILED per partition, and a group asking
// for all its topics (nil) sees only those the principal may describe.
func (c *check) describeShareGroupOffsets(ex *pipeline.Exchange, r *kmsg.DescribeShareGroupOffsetsRequest) pipeline.Verdict {
	type local struct {
		at    int
		group kmsg.DescribeShareGroupOffsetsResponseGroup
	}
	var answered []local
	denied := map[string][]kmsg.DescribeShareGroupOffsetsResponseGroupTopic{}
	listAll := map[string]bool{}
	var forward []kmsg.DescribeShareGroupOffsetsRequestGroup
	changed := false
	for i, g := range r.Groups {
		rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		rg.GroupID = g.GroupID
		if !c.group(g.GroupID, opDescribe) {
			rg.ErrorCode, changed = errGroup, true
			answered = append(answered, local{i, rg})
			continue
		}
		if g.Topics == nil {
			listAll[g.GroupID] = true
			forward = append(forward, g)
			continue
		}
		yes, no := sift(g.Topics, func(t *kmsg.DescribeShareGroupOffsetsRequestGroupTopic) int16 {
			return c.topicCode(t.Topic, [16]byte{}, opDescribe)
		})
		for _, d := range no {
			t := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			t.Topic = d.item.Topic
			for _, p := range d.item.Partitions {
				rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				rp.Partition, rp.ErrorCode = p, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			rg.Topics = append(rg.Topics, t)
		}
		if len(no) == 0 {
			forward = append(forward, g)
			continue
		}
		changed = true
		if len(yes) == 0 { // nothing left to ask (an empty list would mean all topics)
			answered = append(answered, local{i, rg})
			continue
		}
		denied[g.GroupID] = rg.Topics
		g.Topics = yes
		forward = append(forward, g)
	}
	merge := func(groups []kmsg.DescribeShareGroupOffsetsResponseGroup) []kmsg.DescribeShareGroupOffsetsResponseGroup {
		seen := map[string]bool{}
		for i := range groups {
			g := &groups[i]
			seen[g.GroupID] = true
			if listAll[g.GroupID] {
				g.Topics = keep(g.Topics, func(t *kmsg.DescribeShareGroupOffsetsResponseGroupTopic) bool {
					name, ok := c.topicName(t.Topic, t.TopicID)
					return ok && c.topic(name, opDescribe)
				})
			}
			g.Topics = append(g.Topics, denied[g.GroupID]...)
		}
		for _, f := range forward { // a group the broker left out still gets its denials
			if d := denied[f.GroupID]; len(d) > 0 && !seen[f.GroupID] {
				rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
				rg.GroupID, rg.Topics = f.GroupID, d
				groups = append(groups, rg)
			}
		}
		for _, a := range answered { // back in the request's order
			at := min(a.at, len(groups))
			groups = slices.Insert(groups, at, a.group)
		}
		return groups
	}
	if len(forward) == 0 {
		resp := respond[*kmsg.DescribeShareGroupOffsetsResponse](r)
		resp.Groups = merge(nil)
		return pipeline.Reply(resp)
	}
	if changed {
		r.Groups = forward
		ex.Replace(r)
	}
	ex.After(func(resp kmsg.Response) {
		d := resp.(*kmsg.DescribeShareGroupOffsetsResponse)
		d.Groups = merge(d.Groups)
	})
	return pipeline.Pass()
}
