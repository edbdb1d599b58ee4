// Package acl holds authorization rules with Kafka's semantics: the
// resource types, operations and pattern types of Kafka's ACLs, super
// users and allow.everyone.if.no.acl.found, loaded from Strimzi KafkaUser
// manifests or a plain rule list. The policy stage asks it per resource.
package acl

import (
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterName is the one cluster resource's name, as Kafka calls it.
const ClusterName = "kafka-cluster"

// Rule is one ACL binding: a principal may (or may not) do an operation
// on resources matching a pattern, from a host.
type Rule struct {
	Principal string // "User:alice", or "User:*" for everyone
	Resource  kmsg.ACLResourceType
	Name      string // resource name or prefix; "*" literal matches any
	Prefix    bool   // patternType prefix
	Operation kmsg.ACLOperation
	Host      string // "*" or an IP address
	Deny      bool
	// Source says where the rule came from (file, document, index), for
	// the audit log and error messages.
	Source string

	ip net.IP // Host parsed, by New
}

// matchesResource reports whether the rule's pattern covers a resource.
func (r *Rule) matchesResource(t kmsg.ACLResourceType, name string) bool {
	if r.Resource != t {
		return false
	}
	if r.Prefix {
		return strings.HasPrefix(name, r.Name)
	}
	return r.Name == name || r.Name == "*"
}

// matchesHost compares the rule's host with the client's address: "*"
// matches any; IP addresses compare as addresses, so ::1 and
// 0:0:0:0:0:0:0:1 (as Java writes it) are the same host.
func (r *Rule) matchesHost(host net.IP) bool {
	if r.Host == "*" {
		return true
	}
	return r.ip != nil && host != nil && r.ip.Equal(host)
}

// matchesOperation applies Kafka's implications: All matches every
// operation; an allowed Read, Write, Delete or Alter allows Describe, and
// an allowed AlterConfigs allows DescribeConfigs. Implications hold for
// allow rules only, as in Kafka: denying Read does not deny Describe.
func (r *Rule) matchesOperation(op kmsg.ACLOperation) bool {
	if r.Operation == kmsg.ACLOperationAll || r.Operation == op {
		return true
	}
	if r.Deny {
		return false
	}
	switch op {
	case kmsg.ACLOperationDescribe:
		switch r.Operation {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return r.Operation == kmsg.ACLOperationAlterConfigs
	}
	return false
}
