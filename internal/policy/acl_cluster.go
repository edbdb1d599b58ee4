package policy

import (
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// clusterKeys are the keys Kafka authorizes as one operation on the
// cluster resource.
var clusterKeys = map[kmsg.Key]kmsg.ACLOperation{
	kmsg.LeaderAndISR:                 opClusterAction,
	kmsg.StopReplica:                  opClusterAction,
	kmsg.UpdateMetadata:               opClusterAction,
	kmsg.ControlledShutdown:           opClusterAction,
	kmsg.WriteTxnMarkers:              opClusterAction,
	kmsg.DescribeACLs:                 opDescribe,
	kmsg.CreateACLs:                   opAlter,
	kmsg.DeleteACLs:                   opAlter,
	kmsg.AlterReplicaLogDirs:          opAlter,
	kmsg.DescribeLogDirs:              opDescribe,
	kmsg.ElectLeaders:                 opAlter,
	kmsg.AlterPartitionAssignments:    opAlter,
	kmsg.ListPartitionReassignments:   opDescribe,
	kmsg.DescribeClientQuotas:         opDescribeConfigs,
	kmsg.AlterClientQuotas:            opAlterConfigs,
	kmsg.DescribeUserSCRAMCredentials: opDescribe,
	kmsg.AlterUserSCRAMCredentials:    opAlter,
	kmsg.Vote:                         opClusterAction,
	kmsg.BeginQuorumEpoch:             opClusterAction,
	kmsg.EndQuorumEpoch:               opClusterAction,
	kmsg.DescribeQuorum:               opDescribe,
	kmsg.AlterPartition:               opClusterAction,
	kmsg.UpdateFeatures:               opAlter,
	kmsg.Envelope:                     opClusterAction,
	kmsg.FetchSnapshot:                opClusterAction,
	kmsg.BrokerRegistration:           opClusterAction,
	kmsg.BrokerHeartbeat:              opClusterAction,
	kmsg.UnregisterBroker:             opAlter,
	kmsg.AllocateProducerIDs:          opClusterAction,
	kmsg.ControllerRegistration:       opClusterAction,
	kmsg.AssignReplicasToDirs:         opClusterAction,
	kmsg.ListConfigResources:          opDescribeConfigs,
	kmsg.AddRaftVoter:                 opAlter,
	kmsg.RemoveRaftVoter:              opAlter,
	kmsg.UpdateRaftVoter:              opClusterAction,
	kmsg.InitializeShareGroupState:    opClusterAction,
	kmsg.ReadShareGroupState:          opClusterAction,
	kmsg.WriteShareGroupState:         opClusterAction,
	kmsg.DeleteShareGroupState:        opClusterAction,
	kmsg.ReadShareGroupStateSummary:   opClusterAction,
	kmsg.UnregisterController:         opClusterAction,
}

// wholeCluster checks one operation on the cluster for the whole request.
func (c *check) wholeCluster(req kmsg.Request, op kmsg.ACLOperation) pipeline.Verdict {
	if c.cluster(op) {
		return pipeline.Pass()
	}
	return wholeError(req, kerr.ClusterAuthorizationFailed)
}

// wholeError answers req with err for everything it asks: in the
// response's top-level error code, or for the keys whose answers carry an
// error per entry, in every entry. A key with neither closes the
// connection, as the proxy cannot write a denial the client would read.
func wholeError(req kmsg.Request, err *kerr.Error) pipeline.Verdict {
	resp := respond[kmsg.Response](req)
	code := err.Code
	switch r := req.(type) {
	case *kmsg.CreateACLsRequest:
		out := resp.(*kmsg.CreateACLsResponse)
		for range r.Creations {
			e := kmsg.NewCreateACLsResponseResult()
			e.ErrorCode = code
			out.Results = append(out.Results, e)
		}
		return pipeline.Reply(out)
	case *kmsg.DeleteACLsRequest:
		out := resp.(*kmsg.DeleteACLsResponse)
		for range r.Filters {
			e := kmsg.NewDeleteACLsResponseResult()
			e.ErrorCode = code
			out.Results = append(out.Results, e)
		}
		return pipeline.Reply(out)
	case *kmsg.AlterReplicaLogDirsRequest:
		out := resp.(*kmsg.AlterReplicaLogDirsResponse)
		for _, d := range r.Dirs {
			for _, t := range d.Topics {
				rt := kmsg.NewAlterReplicaLogDirsResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}
		return pipeline.Reply(out)
	case *kmsg.AlterClientQuotasRequest:
		out := resp.(*kmsg.AlterClientQuotasResponse)
		for _, en := range r.Entries {
			e := kmsg.NewAlterClientQuotasResponseEntry()
			e.ErrorCode = code
			for _, ent := range en.Entity {
				re := kmsg.NewAlterClientQuotasResponseEntryEntity()
				re.Type, re.Name = ent.Type, ent.Name
				e.Entity = append(e.Entity, re)
			}
			out.Entries = append(out.Entries, e)
		}
		return pipeline.Reply(out)
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		out := resp.(*kmsg.AlterUserSCRAMCredentialsResponse)
		users := map[string]bool{}
		var names []string
		for _, d := range r.Deletions {
			if !users[d.Name] {
				users[d.Name] = true
				names = append(names, d.Name)
			}
		}
		for _, u := range r.Upsertions {
			if !users[u.Name] {
				users[u.Name] = true
				names = append(names, u.Name)
			}
		}
		for _, n := range names {
			e := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			e.User, e.ErrorCode = n, code
			out.Results = append(out.Results, e)
		}
		return pipeline.Reply(out)
	case *kmsg.WriteTxnMarkersRequest:
		out := resp.(*kmsg.WriteTxnMarkersResponse)
		for _, m := range r.Markers {
			rm := kmsg.NewWriteTxnMarkersResponseMarker()
			rm.ProducerID = m.ProducerID
			for _, t := range m.Topics {
				rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					rp.Partition, rp.ErrorCode = p, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				rm.Topics = append(rm.Topics, rt)
			}
			out.Markers = append(out.Markers, rm)
		}
		return pipeline.Reply(out)
	case *kmsg.ElectLeadersRequest:
		if r.Version == 0 { // no top-level error: every partition says it
			out := resp.(*kmsg.ElectLeadersResponse)
			for _, t := range r.Topics {
				rt := kmsg.NewElectLeadersResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewElectLeadersResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
			return pipeline.Reply(out)
		}
	}
	// Every other answer has a top-level error code (the field is named
	// ErrorCode in every kmsg response that has one).
	f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if !f.IsValid() || f.Kind() != reflect.Int16 {
		return pipeline.Refuse(fmt.Errorf("%s: %s, and its answer has no error code to say so", kmsg.NameForKey(req.Key()), err.Message))
	}
	f.SetInt(int64(code))
	return pipeline.Reply(resp)
}

// configCode is the check of a config resource: topics and groups by
// name, brokers, broker loggers and client metrics on the cluster.
func (c *check) configCode(t kmsg.ConfigResourceType, name string, op kmsg.ACLOperation) int16 {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return c.topicCode(name, [16]byte{}, op)
	case kmsg.ConfigResourceTypeGroupConfig:
		return groupCode(c, name, op)
	}
	if !c.cluster(op) {
		return errCluster
	}
	return 0
}

func (c *check) describeConfigs(ex *pipeline.Exchange, r *kmsg.DescribeConfigsRequest) pipeline.Verdict {
	yes, no := sift(r.Resources, func(x *kmsg.DescribeConfigsRequestResource) int16 {
		return c.configCode(x.ResourceType, x.ResourceName, opDescribeConfigs)
	})
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.DescribeConfigsResponseResource) []kmsg.DescribeConfigsResponseResource {
		for _, d := range no {
			x := kmsg.NewDescribeConfigsResponseResource()
			x.ResourceType, x.ResourceName, x.ErrorCode = d.item.ResourceType, d.item.ResourceName, d.code
			dst = append(dst, x)
		}
		return dst
	}
	r.Resources = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.DescribeConfigsResponse](r)
		resp.Resources = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		d := resp.(*kmsg.DescribeConfigsResponse)
		d.Resources = add(d.Resources)
	})
}

func (c *check) alterConfigs(ex *pipeline.Exchange, r *kmsg.AlterConfigsRequest) pipeline.Verdict {
	yes, no := sift(r.Resources, func(x *kmsg.AlterConfigsRequestResource) int16 {
		return c.configCode(x.ResourceType, x.ResourceName, opAlterConfigs)
	})
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.AlterConfigsResponseResource) []kmsg.AlterConfigsResponseResource {
		for _, d := range no {
			x := kmsg.NewAlterConfigsResponseResource()
			x.ResourceType, x.ResourceName, x.ErrorCode = d.item.ResourceType, d.item.ResourceName, d.code
			dst = append(dst, x)
		}
		return dst
	}
	r.Resources = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.AlterConfigsResponse](r)
		resp.Resources = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		a := resp.(*kmsg.AlterConfigsResponse)
		a.Resources = add(a.Resources)
	})
}

func (c *check) incrementalAlterConfigs(ex *pipeline.Exchange, r *kmsg.IncrementalAlterConfigsRequest) pipeline.Verdict {
	yes, no := sift(r.Resources, func(x *kmsg.IncrementalAlterConfigsRequestResource) int16 {
		return c.configCode(x.ResourceType, x.ResourceName, opAlterConfigs)
	})
	if len(no) == 0 {
		return pipeline.Pass()
	}
	add := func(dst []kmsg.IncrementalAlterConfigsResponseResource) []kmsg.IncrementalAlterConfigsResponseResource {
		for _, d := range no {
			x := kmsg.NewIncrementalAlterConfigsResponseResource()
			x.ResourceType, x.ResourceName, x.ErrorCode = d.item.ResourceType, d.item.ResourceName, d.code
			dst = append(dst, x)
		}
		return dst
	}
	r.Resources = yes
	return part(ex, r, len(yes) > 0, func() kmsg.Response {
		resp := respond[*kmsg.IncrementalAlterConfigsResponse](r)
		resp.Resources = add(nil)
		return resp
	}, func(resp kmsg.Response) {
		a := resp.(*kmsg.IncrementalAlterConfigsResponse)
		a.Resources = add(a.Resources)
	})
}
