package acl

import (
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Everyone is the wildcard principal of a rule.
const Everyone = "User:*"

// Authorizer answers Kafka's question "may this principal, from this host,
// do this operation on this resource?" from an immutable rule set. Rules
// are indexed by principal, so a check costs the rules of that principal
// (and of User:*), not all of them.
type Authorizer struct {
	byPrincipal map[string][]Rule
	super       map[string]bool
	// allowIfNone is allow.everyone.if.no.acl.found: a resource no rule
	// names at all (for any principal) is open to everyone.
	allowIfNone bool
	byResource  map[kmsg.ACLResourceType][]*Rule // every rule, for allowIfNone
	rules       int
}

// New builds an authorizer. super lists principals ("User:admin") that
// may do everything, as Kafka's super.users.
func New(rules []Rule, super []string, allowEveryoneIfNoACLFound bool) *Authorizer {
	a := &Authorizer{
		byPrincipal: make(map[string][]Rule),
		super:       make(map[string]bool, len(super)),
		allowIfNone: allowEveryoneIfNoACLFound,
		byResource:  make(map[kmsg.ACLResourceType][]*Rule),
		rules:       len(rules),
	}
	for _, s := range super {
		a.super[s] = true
	}
	for _, r := range rules {
		r.ip = net.ParseIP(r.Host)
		a.byPrincipal[r.Principal] = append(a.byPrincipal[r.Principal], r)
	}
	for p := range a.byPrincipal {
		rs := a.byPrincipal[p]
		for i := range rs {
			a.byResource[rs[i].Resource] = append(a.byResource[rs[i].Resource], &rs[i])
		}
	}
	return a
}

// Rules is how many rules the authorizer holds.
func (a *Authorizer) Rules() int { return a.rules }

// Super reports whether principal is a super user.
func (a *Authorizer) Super(principal string) bool { return a.super[principal] }

// Allowed decides one operation on one resource: a super user may do
// anything; a matching deny rule beats any allow; otherwise a matching
// allow rule allows. With no match, the resource is open only when no rule
// names it and allow.everyone.if.no.acl.found is set.
func (a *Authorizer) Allowed(principal string, host net.IP, t kmsg.ACLResourceType, name string, op kmsg.ACLOperation) bool {
	if a.super[principal] {
		return true
	}
	allowed := false
	for _, rs := range [2][]Rule{a.byPrincipal[principal], a.byPrincipal[Everyone]} {
		for i := range rs {
			r := &rs[i]
			if !r.matchesResource(t, name) || !r.matchesOperation(op) || !r.matchesHost(host) {
				continue
			}
			if r.Deny {
				return false
			}
			allowed = true
		}
	}
	if allowed || !a.allowIfNone {
		return allowed
	}
	for _, r := range a.byResource[t] {
		if r.matchesResource(t, name) {
			return false
		}
	}
	return true
}

// AnyAllowed reports whether the principal may do op on some resource of
// type t, as Kafka asks for an idempotent producer without IdempotentWrite
// ("Write on any topic"): an allow rule for the operation that no deny
// rule for the same pattern (or one covering it) cancels.
func (a *Authorizer) AnyAllowed(principal string, host net.IP, t kmsg.ACLResourceType, op kmsg.ACLOperation) bool {
	if a.super[principal] {
		return true
	}
	rules := append(append([]Rule(nil), a.byPrincipal[principal]...), a.byPrincipal[Everyone]...)
	for i := range rules {
		allow := &rules[i]
		if allow.Deny || allow.Resource != t || !allow.matchesOperation(op) || !allow.matchesHost(host) {
			continue
		}
		if !deniedCovering(rules, allow, op, host) {
			return true
		}
	}
	if !a.allowIfNone {
		return false
	}
	// Open if some name is named by no rule: any name not matched by a
	// literal "*" or an empty prefix.
	for _, r := range a.byResource[t] {
		if (!r.Prefix && r.Name == "*") || (r.Prefix && r.Name == "") {
			return false
		}
	}
	return true
}

// deniedCovering reports whether a deny rule covers every resource the
// allow rule matches (a literal "*", a prefix of the allow's name or
// prefix, or the same literal).
func deniedCovering(rules []Rule, allow *Rule, op kmsg.ACLOperation, host net.IP) bool {
	for i := range rules {
		d := &rules[i]
		if !d.Deny || d.Resource != allow.Resource || !d.matchesOperation(op) || !d.matchesHost(host) {
			continue
		}
		switch {
		case !d.Prefix && d.Name == "*":
			return true
		case d.Prefix && strings.HasPrefix(allow.Name, d.Name):
			return true
		case !d.Prefix && !allow.Prefix && d.Name == allow.Name:
			return true
		}
	}
	return false
}
