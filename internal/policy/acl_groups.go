package policy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// Per-key checks for consumer groups, share groups and their offsets.

// wholeGroup: the request is about one group; denied, its top-level error
// is GROUP_AUTHORIZATION_FAILED.
func (c *check) wholeGroup(req kmsg.Request, group string, op kmsg.ACLOperation) pipeline.Verdict {
	if c.group(group, op) {
		return pipeline.Pass()
	}
	return wholeError(req, kerr.GroupAuthorizationFailed)
}

// offsetCommit: Read on the group (every partition fails without it), then
// Read on each topic.
func (c *check) offsetCommit(ex *pipeline.Exchange, r *kmsg.OffsetCommitRequest) pipeline.Verdict {
	code := func(t *kmsg.OffsetCommitRequestTopic) int16 { return c.topicCode(t.Topic, t.TopicID, opRead) }
	if !c.group(r.Group, opRead) {
		code = func(*kmsg.OffsetCommitRequestTopic) int16 { return errGroup }
	}
	yes, no := sift(r.Topics, code)
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.OffsetCommitResponseTopic) []kmsg.OffsetCommitResponseTopic {
		for _, d := range no {
			t := kmsg.NewOffsetCommitResponseTopic()
			t.Topic, t.TopicID = d.item.Topic, d.item.TopicID
			for _, p := range d.item.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.OffsetCommitResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		o := resp.(*kmsg.OffsetCommitResponse)
		o.Topics = add(o.Topics)
	})
}

// offsetFetch: Describe on the group, then Describe on each topic; asked
// for all of a group's topics, the answer keeps those the principal may
// describe.
func (c *check) offsetFetch(ex *pipeline.Exchange, r *kmsg.OffsetFetchRequest) pipeline.Verdict {
	if r.Version >= 8 {
		return c.offsetFetchGroups(ex, r)
	}
	if !c.group(r.Group, opDescribe) {
		resp := respond[*kmsg.OffsetFetchResponse](r)
		resp.ErrorCode = errGroup
		if r.Version < 2 { // no top-level error: each partition says it
			for _, t := range r.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p, errGroup
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
		}
		return pipeline.Reply(resp)
	}
	if r.Topics == nil {
		ex.After(func(resp kmsg.Response) {
			o := resp.(*kmsg.OffsetFetchResponse)
			o.Topics = keep(o.Topics, func(t *kmsg.OffsetFetchResponseTopic) bool { return c.topic(t.Topic, opDescribe) })
		})
		return pipeline.Pass()
	}
	yes, no := sift(r.Topics, func(t *kmsg.OffsetFetchRequestTopic) int16 { return c.topicCode(t.Topic, [16]byte{}, opDescribe) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.OffsetFetchResponseTopic) []kmsg.OffsetFetchResponseTopic {
		for _, d := range no {
			t := kmsg.NewOffsetFetchResponseTopic()
			t.Topic = d.item.Topic
			for _, p := range d.item.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.OffsetFetchResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		o := resp.(*kmsg.OffsetFetchResponse)
		o.Topics = add(o.Topics)
	})
}

// offsetFetchGroups is OffsetFetch v8+, several groups at once: each group
// is checked as offsetFetch checks the one group of older versions.
func (c *check) offsetFetchGroups(ex *pipeline.Exchange, r *kmsg.OffsetFetchRequest) pipeline.Verdict {
	type local struct {
		at    int // the group's place in the request
		group kmsg.OffsetFetchResponseGroup
	}
	var answered []local                                         // groups the proxy answers itself
	partial := map[string][]kmsg.OffsetFetchResponseGroupTopic{} // denied topics of forwarded groups
	listAll := map[string]bool{}                                 // groups asking for all their topics
	var forward []kmsg.OffsetFetchRequestGroup
	changed := false
	for i, g := range r.Groups {
		if !c.group(g.Group, opDescribe) {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, errGroup
			answered = append(answered, local{i, rg})
			changed = true
			continue
		}
		if g.Topics == nil {
			listAll[g.Group] = true
			forward = append(forward, g)
			continue
		}
		yes, no := sift(g.Topics, func(t *kmsg.OffsetFetchRequestGroupTopic) int16 { return c.topicCode(t.Topic, t.TopicID, opDescribe) })
		var denied []kmsg.OffsetFetchResponseGroupTopic
		for _, d := range no {
			t := kmsg.NewOffsetFetchResponseGroupTopic()
			t.Topic, t.TopicID = d.item.Topic, d.item.TopicID
			for _, p := range d.item.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.ErrorCode = p, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			denied = append(denied, t)
		}
		if len(no) > 0 {
			changed = true
		}
		if len(yes) == 0 && len(g.Topics) > 0 {
			// Nothing left to ask for this group (a nil list would mean
			// all of its topics).
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.Topics = g.Group, denied
			answered = append(answered, local{i, rg})
			continue
		}
		g.Topics = yes
		if g.Topics == nil {
			g.Topics = []kmsg.OffsetFetchRequestGroupTopic{} // asked for none, stays none
		}
		partial[g.Group] = denied
		forward = append(forward, g)
	}
	merge := func(groups []kmsg.OffsetFetchResponseGroup) []kmsg.OffsetFetchResponseGroup {
		seen := map[string]bool{}
		for i := range groups {
			g := &groups[i]
			seen[g.Group] = true
			if listAll[g.Group] {
				g.Topics = keep(g.Topics, func(t *kmsg.OffsetFetchResponseGroupTopic) bool {
					name, ok := c.topicName(t.Topic, t.TopicID)
					return ok && c.topic(name, opDescribe)
				})
			}
			g.Topics = append(g.Topics, partial[g.Group]...)
		}
		for _, f := range forward { // a group the broker left out still gets its denials
			if d := partial[f.Group]; len(d) > 0 && !seen[f.Group] {
				rg := kmsg.NewOffsetFetchResponseGroup()
				rg.Group, rg.Topics = f.Group, d
				groups = append(groups, rg)
			}
		}
		for _, a := range answered { // back in the request's order
			at := min(a.at, len(groups))
			groups = append(groups[:at], append([]kmsg.OffsetFetchResponseGroup{a.group}, groups[at:]...)...)
		}
		return groups
	}
	if len(forward) == 0 {
		resp := respond[*kmsg.OffsetFetchResponse](r)
		resp.Groups = merge(nil)
		return pipeline.Reply(resp)
	}
	if changed {
		r.Groups = forward
		ex.Replace(r)
	}
	ex.After(func(resp kmsg.Response) {
		o := resp.(*kmsg.OffsetFetchResponse)
		o.Groups = merge(o.Groups)
	})
	return pipeline.Pass()
}

// findCoordinator: Describe on the group or transactional id asked about;
// share-group coordinators are the brokers' business (ClusterAction).
func (c *check) findCoordinator(ex *pipeline.Exchange, r *kmsg.FindCoordinatorRequest) pipeline.Verdict {
	code := func(key *string) int16 {
		switch r.CoordinatorType {
		case 0:
			if !c.group(*key, opDescribe) {
				return errGroup
			}
		case 1:
			if !c.txn(*key, opDescribe) {
				return errTxn
			}
		default:
			if !c.cluster(opClusterAction) {
				return errCluster
			}
		}
		return 0
	}
	if r.Version < 4 {
		if e := code(&r.CoordinatorKey); e != 0 {
			resp := respond[*kmsg.FindCoordinatorResponse](r)
			resp.ErrorCode, resp.NodeID, resp.Port = e, -1, -1
			return pipeline.Reply(resp)
		}
		return pipeline.Pass()
	}
	yes, no := sift(r.CoordinatorKeys, code)
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.FindCoordinatorResponseCoordinator) []kmsg.FindCoordinatorResponseCoordinator {
		for _, d := range no {
			co := kmsg.NewFindCoordinatorResponseCoordinator()
			co.Key, co.ErrorCode, co.NodeID, co.Port = d.item, d.code, -1, -1
			dst = append(dst, co)
		}
		return dst
	}
	r.CoordinatorKeys = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.FindCoordinatorResponse](r)
		resp.Coordinators = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		f := resp.(*kmsg.FindCoordinatorResponse)
		f.Coordinators = add(f.Coordinators)
	})
}

func (c *check) describeGroups(ex *pipeline.Exchange, r *kmsg.DescribeGroupsRequest) pipeline.Verdict {
	yes, no := sift(r.Groups, func(g *string) int16 { return groupCode(c, *g, opDescribe) })
	ops := func(gs []kmsg.DescribeGroupsResponseGroup) {
		if r.IncludeAuthorizedOperations {
			for i := range gs {
				if gs[i].ErrorCode == 0 {
					gs[i].AuthorizedOperations = c.ops(kmsg.ACLResourceTypeGroup, gs[i].Group, groupOps)
				}
			}
		}
	}
	add := func(dst []kmsg.DescribeGroupsResponseGroup) []kmsg.DescribeGroupsResponseGroup {
		for _, d := range no {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = d.item, d.code
			dst = append(dst, g)
		}
		return dst
	}
	if len(no) == 0 {
		if r.IncludeAuthorizedOperations {
			ex.After(func(resp kmsg.Response) { ops(resp.(*kmsg.DescribeGroupsResponse).Groups) })
		}
		return pipeline.Pass()
	}
	r.Groups = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DescribeGroupsResponse](r)
		resp.Groups = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		d := resp.(*kmsg.DescribeGroupsResponse)
		ops(d.Groups)
		d.Groups = add(d.Groups)
	})
}

// listGroups: every group with Describe on the cluster, else only the
// groups the principal may describe.
func (c *check) listGroups(ex *pipeline.Exchange, _ *kmsg.ListGroupsRequest) pipeline.Verdict {
	if c.cluster(opDescribe) {
		return pipeline.Pass()
	}
	ex.After(func(resp kmsg.Response) {
		l := resp.(*kmsg.ListGroupsResponse)
		l.Groups = keep(l.Groups, func(g *kmsg.ListGroupsResponseGroup) bool { return c.group(g.Group, opDescribe) })
	})
	return pipeline.Pass()
}

func (c *check) deleteGroups(ex *pipeline.Exchange, r *kmsg.DeleteGroupsRequest) pipeline.Verdict {
	yes, no := sift(r.Groups, func(g *string) int16 { return groupCode(c, *g, opDelete) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.DeleteGroupsResponseGroup) []kmsg.DeleteGroupsResponseGroup {
		for _, d := range no {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = d.item, d.code
			dst = append(dst, g)
		}
		return dst
	}
	r.Groups = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DeleteGroupsResponse](r)
		resp.Groups = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		d := resp.(*kmsg.DeleteGroupsResponse)
		d.Groups = add(d.Groups)
	})
}

// offsetDelete: Delete on the group (a top-level error), then Read on each
// topic.
func (c *check) offsetDelete(ex *pipeline.Exchange, r *kmsg.OffsetDeleteRequest) pipeline.Verdict {
	if !c.group(r.Group, opDelete) {
		return wholeError(r, kerr.GroupAuthorizationFailed)
	}
	yes, no := sift(r.Topics, func(t *kmsg.OffsetDeleteRequestTopic) int16 { return c.topicCode(t.Topic, [16]byte{}, opRead) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.OffsetDeleteResponseTopic) []kmsg.OffsetDeleteResponseTopic {
		for _, d := range no {
			t := kmsg.NewOffsetDeleteResponseTopic()
			t.Topic = d.item.Topic
			for _, p := range d.item.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, d.code
				t.Partitions = append(t.Partitions, rp)
			}
			dst = append(dst, t)
		}
		return dst
	}
	r.Topics = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.OffsetDeleteResponse](r)
		resp.Topics = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		o := resp.(*kmsg.OffsetDeleteResponse)
		o.Topics = add(o.Topics)
	})
}

// consumerGroupHeartbeat (KIP-848): Read on the group, and Describe on
// every topic the member subscribes to by name.
func (c *check) consumerGroupHeartbeat(r *kmsg.ConsumerGroupHeartbeatRequest) pipeline.Verdict {
	if !c.group(r.Group, opRead) {
		return wholeError(r, kerr.GroupAuthorizationFailed)
	}
	for _, t := range r.SubscribedTopicNames {
		if !c.topic(t, opDescribe) {
			return wholeError(r, kerr.TopicAuthorizationFailed)
		}
	}
	return pipeline.Pass()
}

func (c *check) consumerGroupDescribe(ex *pipeline.Exchange, r *kmsg.ConsumerGroupDescribeRequest) pipeline.Verdict {
	yes, no := sift(r.Groups, func(g *string) int16 { return groupCode(c, *g, opDescribe) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.ConsumerGroupDescribeResponseGroup) []kmsg.ConsumerGroupDescribeResponseGroup {
		for _, d := range no {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = d.item, d.code
			dst = append(dst, g)
		}
		return dst
	}
	r.Groups = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.ConsumerGroupDescribeResponse](r)
		resp.Groups = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		d := resp.(*kmsg.ConsumerGroupDescribeResponse)
		d.Groups = add(d.Groups)
	})
}

func groupCode(c *check, group string, op kmsg.ACLOperation) int16 {
	if !c.group(group, op) {
		return errGroup
	}
	return 0
}

// groupList checks a request naming groups in a list of strings whose
// answer has one entry per group (share and streams group describes).
func groupList[E any](c *check, ex *pipeline.Exchange, req kmsg.Request, groups *[]string, op kmsg.ACLOperation, entry func(group string, code int16) E, list func(kmsg.Response) *[]E) pipeline.Verdict {
	yes, no := sift(*groups, func(g *string) int16 { return groupCode(c, *g, op) })
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []E) []E {
		for _, d := range no {
			dst = append(dst, entry(d.item, d.code))
		}
		return dst
	}
	*groups = yes
	return part(ex, req, len(yes) > 0, func() kmsg.Response {
		resp := respond[kmsg.Response](req)
		l := list(resp)
		*l = add(*l)
		return resp
	}, func(resp kmsg.Response) {
		l := list(resp)
		*l = add(*l)
	})
}

// shareAndStreams are the KIP-932 share-group and KIP-1071 streams-group
// keys: Read on the group to take part, Describe to describe it, Delete
// to delete its offsets; ShareFetch and ShareAcknowledge also Read on
// their topics.
func (c *check) shareAndStreams(ex *pipeline.Exchange, req kmsg.Request) (pipeline.Verdict, bool) {
	switch r := req.(type) {
	case *kmsg.ShareGroupHeartbeatRequest:
		return c.wholeGroup(r, r.GroupID, opRead), true
	case *kmsg.ShareFetchRequest:
		return c.shareFetch(ex, r), true
	case *kmsg.ShareAcknowledgeRequest:
		return c.shareAcknowledge(ex, r), true
	case *kmsg.ShareGroupDescribeRequest:
		return groupList(c, ex, r, &r.GroupIDs, opDescribe, func(g string, code int16) kmsg.ShareGroupDescribeResponseGroup {
			e := kmsg.NewShareGroupDescribeResponseGroup()
			e.GroupID, e.ErrorCode = g, code
			return e
		}, func(resp kmsg.Response) *[]kmsg.ShareGroupDescribeResponseGroup {
			return &resp.(*kmsg.ShareGroupDescribeResponse).Groups
		}), true
	case *kmsg.StreamsGroupHeartbeatRequest:
		return c.wholeGroup(r, r.Group, opRead), true
	case *kmsg.StreamsGroupTopologyDescriptionUpdateRequest:
		return c.wholeGroup(r, r.Group, opRead), true
	case *kmsg.StreamsGroupDescribeRequest:
		return groupList(c, ex, r, &r.Groups, opDescribe, func(g string, code int16) kmsg.StreamsGroupDescribeResponseGroup {
			e := kmsg.NewStreamsGroupDescribeResponseGroup()
			e.Group, e.ErrorCode = g, code
			return e
		}, func(resp kmsg.Response) *[]kmsg.StreamsGroupDescribeResponseGroup {
			return &resp.(*kmsg.StreamsGroupDescribeResponse).Groups
		}), true
	case *kmsg.AlterShareGroupOffsetsRequest:
		return c.wholeGroup(r, r.GroupID, opRead), true
	case *kmsg.DeleteShareGroupOffsetsRequest:
		return c.wholeGroup(r, r.GroupID, opDelete), true
	case *kmsg.DescribeShareGroupOffsetsRequest:
		return c.describeShareGroupOffsets(ex, r), true
	}
	return pipeline.Verdict{}, false
}
