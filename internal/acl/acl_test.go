package acl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	txn     = kmsg.ACLResourceTypeTransactionalId

	read     = kmsg.ACLOperationRead
	write    = kmsg.ACLOperationWrite
	describe = kmsg.ACLOperationDescribe
	create   = kmsg.ACLOperationCreate
	del      = kmsg.ACLOperationDelete
	alter    = kmsg.ACLOperationAlter
	descCfg  = kmsg.ACLOperationDescribeConfigs
	alterCfg = kmsg.ACLOperationAlterConfigs
	idemp    = kmsg.ACLOperationIdempotentWrite
	all      = kmsg.ACLOperationAll
)

func allow(p string, t kmsg.ACLResourceType, name string, op kmsg.ACLOperation) Rule {
	return Rule{Principal: p, Resource: t, Name: name, Operation: op, Host: "*"}
}

func deny(p string, t kmsg.ACLResourceType, name string, op kmsg.ACLOperation) Rule {
	r := allow(p, t, name, op)
	r.Deny = true
	return r
}

func prefix(r Rule) Rule { r.Prefix = true; return r }

func host(r Rule, h string) Rule { r.Host = h; return r }

var local = net.ParseIP("127.0.0.1")

// TestSemantics is Kafka's StandardAuthorizer rule by rule.
func TestSemantics(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rules      []Rule
		super      []string
		allowNone  bool
		principal  string
		host       net.IP
		t          kmsg.ACLResourceType
		resource   string
		op         kmsg.ACLOperation
		wantResult bool
	}{
		{"no rules denies", nil, nil, false, "User:a", local, topic, "t", read, false},
		{"literal allow", []Rule{allow("User:a", topic, "t", read)}, nil, false, "User:a", local, topic, "t", read, true},
		{"other principal", []Rule{allow("User:b", topic, "t", read)}, nil, false, "User:a", local, topic, "t", read, false},
		{"other topic", []Rule{allow("User:a", topic, "u", read)}, nil, false, "User:a", local, topic, "t", read, false},
		{"other type", []Rule{allow("User:a", group, "t", read)}, nil, false, "User:a", local, topic, "t", read, false},
		{"other operation", []Rule{allow("User:a", topic, "t", write)}, nil, false, "User:a", local, topic, "t", read, false},
		{"deny beats allow", []Rule{allow("User:a", topic, "t", read), deny("User:a", topic, "t", read)}, nil, false, "User:a", local, topic, "t", read, false},
		{"deny for everyone beats allow", []Rule{allow("User:a", topic, "t", read), deny(Everyone, topic, "t", read)}, nil, false, "User:a", local, topic, "t", read, false},
		{"prefix deny beats literal allow", []Rule{allow("User:a", topic, "team-t", read), prefix(deny("User:a", topic, "team-", read))}, nil, false, "User:a", local, topic, "team-t", read, false},
		{"everyone", []Rule{allow(Everyone, topic, "t", read)}, nil, false, "User:a", local, topic, "t", read, true},
		{"wildcard name", []Rule{allow("User:a", topic, "*", read)}, nil, false, "User:a", local, topic, "anything", read, true},
		{"wildcard is literal only as the whole name", []Rule{allow("User:a", topic, "a*", read)}, nil, false, "User:a", local, topic, "ab", read, false},
		{"prefix", []Rule{prefix(allow("User:a", topic, "team-", read))}, nil, false, "User:a", local, topic, "team-orders", read, true},
		{"prefix miss", []Rule{prefix(allow("User:a", topic, "team-", read))}, nil, false, "User:a", local, topic, "other", read, false},
		{"All matches every operation", []Rule{allow("User:a", topic, "t", all)}, nil, false, "User:a", local, topic, "t", alterCfg, true},
		{"deny All", []Rule{allow("User:a", topic, "t", read), deny("User:a", topic, "t", all)}, nil, false, "User:a", local, topic, "t", read, false},
		{"Read implies Describe", []Rule{allow("User:a", topic, "t", read)}, nil, false, "User:a", local, topic, "t", describe, true},
		{"Write implies Describe", []Rule{allow("User:a", topic, "t", write)}, nil, false, "User:a", local, topic, "t", describe, true},
		{"Delete implies Describe", []Rule{allow("User:a", topic, "t", del)}, nil, false, "User:a", local, topic, "t", describe, true},
		{"Alter implies Describe", []Rule{allow("User:a", topic, "t", alter)}, nil, false, "User:a", local, topic, "t", describe, true},
		{"Create does not imply Describe", []Rule{allow("User:a", topic, "t", create)}, nil, false, "User:a", local, topic, "t", describe, false},
		{"AlterConfigs implies DescribeConfigs", []Rule{allow("User:a", topic, "t", alterCfg)}, nil, false, "User:a", local, topic, "t", descCfg, true},
		{"Describe does not imply Read", []Rule{allow("User:a", topic, "t", describe)}, nil, false, "User:a", local, topic, "t", read, false},
		{"deny Read does not deny Describe", []Rule{allow("User:a", topic, "t", write), deny("User:a", topic, "t", read)}, nil, false, "User:a", local, topic, "t", describe, true},
		{"host matches", []Rule{host(allow("User:a", topic, "t", read), "127.0.0.1")}, nil, false, "User:a", local, topic, "t", read, true},
		{"host differs", []Rule{host(allow("User:a", topic, "t", read), "10.0.0.1")}, nil, false, "User:a", local, topic, "t", read, false},
		{"IPv6 host in Java's spelling", []Rule{host(allow("User:a", topic, "t", read), "0:0:0:0:0:0:0:1")}, nil, false, "User:a", net.ParseIP("::1"), topic, "t", read, true},
		{"deny from one host only", []Rule{allow("User:a", topic, "t", read), host(deny("User:a", topic, "t", read), "10.0.0.1")}, nil, false, "User:a", local, topic, "t", read, true},
		{"super user", []Rule{deny("User:admin", topic, "t", all)}, []string{"User:admin"}, false, "User:admin", local, topic, "t", read, true},
		{"allow if none: unnamed resource", []Rule{allow("User:b", topic, "other", read)}, nil, true, "User:a", local, topic, "t", read, true},
		{"allow if none: resource named for another principal", []Rule{allow("User:b", topic, "t", read)}, nil, true, "User:a", local, topic, "t", read, false},
		{"allow if none: named by a prefix", []Rule{prefix(allow("User:b", topic, "t", read))}, nil, true, "User:a", local, topic, "tx", read, false},
		{"allow if none: named by the wildcard", []Rule{allow("User:b", topic, "*", read)}, nil, true, "User:a", local, topic, "t", read, false},
		{"allow if none: other types do not count", []Rule{allow("User:b", group, "t", read)}, nil, true, "User:a", local, topic, "t", read, true},
		{"cluster", []Rule{allow("User:a", cluster, ClusterName, idemp)}, nil, false, "User:a", local, cluster, ClusterName, idemp, true},
		{"transactional id", []Rule{allow("User:a", txn, "tx-1", write)}, nil, false, "User:a", local, txn, "tx-1", write, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.rules, tc.super, tc.allowNone)
			if got := a.Allowed(tc.principal, tc.host, tc.t, tc.resource, tc.op); got != tc.wantResult {
				t.Fatalf("Allowed = %v, want %v", got, tc.wantResult)
			}
		})
	}
}

func TestAnyAllowed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  bool
	}{
		{"none", nil, false},
		{"one topic", []Rule{allow("User:a", topic, "t", write)}, true},
		{"All on a prefix", []Rule{prefix(allow("User:a", topic, "p-", all))}, true},
		{"read only", []Rule{allow("User:a", topic, "t", read)}, false},
		{"denied on the same topic", []Rule{allow("User:a", topic, "t", write), deny("User:a", topic, "t", write)}, false},
		{"denied on every topic", []Rule{allow("User:a", topic, "t", write), deny(Everyone, topic, "*", write)}, false},
		{"denied by a covering prefix", []Rule{prefix(allow("User:a", topic, "team-a", write)), prefix(deny("User:a", topic, "team-", write))}, false},
		{"denied elsewhere", []Rule{allow("User:a", topic, "t", write), deny("User:a", topic, "u", write)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := New(tc.rules, nil, false).AnyAllowed("User:a", local, topic, write); got != tc.want {
				t.Fatalf("AnyAllowed = %v, want %v", got, tc.want)
			}
		})
	}
}

// strimziUsers are KafkaUser resources as a User Operator is given them.
const strimziUsers = `apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaUser
metadata:
  name: orders-service
  namespace: kafka
  labels:
    strimzi.io/cluster: my-cluster
spec:
  authentication:
    type: tls
  authorization:
    type: simple
    acls:
      # Example consumer Acls for topic my-topic using consumer group my-group
      - resource:
          type: topic
          name: orders
          patternType: literal
        operations:
          - Describe
          - Read
        host: "*"
      - resource:
          type: group
          name: orders-
          patternType: prefix
        operations:
          - Read
      - resource:
          type: cluster
        operation: IdempotentWrite
      - resource:
          type: topic
          name: secret
        operation: Read
        type: deny
  quotas:
    producerByteRate: 1048576
    consumerByteRate: 2097152
---
apiVersion: kafka.strimzi.io/v1beta1
kind: KafkaUser
metadata:
  name: billing
  labels:
    strimzi.io/cluster: my-cluster
spec:
  authentication:
    type: scram-sha-512
  authorization:
    type: simple
    acls:
      - resource:
          type: transactionalId
          name: billing-
          patternType: prefix
        operation: All
        host: 10.0.0.7
status:
  observedGeneration: 1
  username: billing
  secret: billing
`

func TestStrimziKafkaUsers(t *testing.T) {
	rules, err := Parse("users.yaml", []byte(strimziUsers))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 6 {
		t.Fatalf("%d rules, want 6: %+v", len(rules), rules)
	}
	a := New(rules, nil, false)
	const tlsUser = "User:CN=orders-service"
	for _, c := range []struct {
		p    string
		h    net.IP
		t    kmsg.ACLResourceType
		name string
		op   kmsg.ACLOperation
		want bool
	}{
		{tlsUser, local, topic, "orders", read, true},
		{tlsUser, local, topic, "orders", write, false},
		{tlsUser, local, group, "orders-eu", read, true},
		{tlsUser, local, cluster, ClusterName, idemp, true},
		{tlsUser, local, topic, "secret", read, false},
		{"User:orders-service", local, topic, "orders", read, false}, // tls users are named by their certificate
		{"User:billing", net.ParseIP("10.0.0.7"), txn, "billing-1", write, true},
		{"User:billing", local, txn, "billing-1", write, false},
	} {
		if got := a.Allowed(c.p, c.h, c.t, c.name, c.op); got != c.want {
			t.Errorf("%s %v %s %s: %v, want %v", c.p, c.t, c.name, c.op, got, c.want)
		}
	}
	if !strings.Contains(rules[0].Source, "users.yaml: document 1: spec.authorization.acls[0]") {
		t.Errorf("source %q", rules[0].Source)
	}
}

func TestPlainRuleList(t *testing.T) {
	rules, err := Parse("rules.yaml", []byte(`
acls:
  - principal: User:alice
    resource: {type: topic, name: payments}
    operations: [Write, Describe]
  - principal: "User:*"
    resource: {type: topic, name: public-, patternType: prefix}
    operation: Read
---
---
acls: []
`))
	if err != nil {
		t.Fatal(err)
	}
	a := New(rules, nil, false)
	if !a.Allowed("User:alice", local, topic, "payments", write) || !a.Allowed("User:bob", local, topic, "public-news", read) || a.Allowed("User:bob", local, topic, "payments", write) {
		t.Fatalf("rules %+v", rules)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"acls:\n  - principal: User:a\n    resource: {type: topic, name: t}\n    operation: Raed\n", `f.yaml:4: document 1: acls[0].operations[0]: "Raed": expected one of Read`},
		{"acls:\n  - principal: alice\n    resource: {type: topic, name: t}\n    operation: Read\n", `acls[0].principal: "alice": expected User:<name>`},
		{"acls:\n  - principal: User:a\n    resource: {type: topc, name: t}\n    operation: Read\n", `acls[0].resource.type: "topc"`},
		{"acls:\n  - principal: User:a\n    resource: {type: topic, name: t, patternType: glob}\n    operation: Read\n", `acls[0].resource.patternType: "glob"`},
		{"acls:\n  - principal: User:a\n    resource: {type: topic, name: t}\n    operation: Read\n    colour: red\n", `acls[0].colour: unknown field`},
		{"acls:\n  - principal: User:a\n    resource: {type: cluster, name: x}\n    operation: Alter\n", `acls[0].resource.name: the cluster resource has no name`},
		{"acls:\n  - principal: User:a\n    resource: {type: topic, name: t}\n    operation: Read\n    host: example.com\n", `acls[0].host: "example.com"`},
		{"acls:\n  - principal: User:a\n    resource: {type: topic, name: t}\n    operation: Read\n    type: maybe\n", `acls[0].type: "maybe"`},
		{"acls:\n  - principal: User:a\n    resource: {type: topic}\n    operation: Read\n", `acls[0].resource.name: missing`},
		{"acls:\n  - principal: User:a\n    resource: {type: topic, name: t}\n", `acls[0].operations: missing`},
		{"apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata: {name: x}\n", `kind: "KafkaTopic"`},
		{"apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaUser\nmetadata: {name: x}\nspec:\n  authorization:\n    type: opa\n", `spec.authorization.type: "opa"`},
		{"apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaUser\nmetadata: {name: x}\nspec:\n  authentication: {type: tls}\n  authorisation: {}\n", `spec.authorisation: unknown field`},
		{"- a\n- b\n", `expected a KafkaUser or a mapping with acls`},
		{"acls: [\n", `document 1:`},
	} {
		_, err := Parse("f.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("doc %q: error %v, want it to contain %q", tc.doc, err, tc.want)
		}
	}
	// Every problem is reported, not just the first.
	_, err := Parse("f.yaml", []byte("acls:\n  - principal: x\n    resource: {type: y, name: t}\n    operation: Z\n"))
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("want three problems, got %v", err)
	}
}

func TestParsePrincipals(t *testing.T) {
	got, err := ParsePrincipals("User:admin; User:ops;")
	if err != nil || len(got) != 2 || got[0] != "User:admin" || got[1] != "User:ops" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := ParsePrincipals("admin"); err == nil {
		t.Fatal("want an error for a principal without a type")
	}
}

// TestManyRules: 10,000 rules load in well under a second, and a check
// costs the principal's rules, not all of them.
func TestManyRules(t *testing.T) {
	var b strings.Builder
	b.WriteString("acls:\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "  - principal: User:svc-%d\n    resource: {type: topic, name: topic-%d}\n    operations: [Read, Write]\n", i%1000, i)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "many.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := Open(Config{Paths: []string{dir}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > loadBound*time.Second {
		t.Fatalf("10,000 rules took %v to load (bound %v)", d, loadBound*time.Second)
	}
	a := s.Authorizer()
	if a.Rules() != 20000 {
		t.Fatalf("%d rules", a.Rules())
	}
	if !a.Allowed("User:svc-7", local, topic, "topic-1007", read) || a.Allowed("User:svc-7", local, topic, "topic-1008", read) {
		t.Fatal("wrong decision")
	}
	if n := testing.AllocsPerRun(100, func() { a.Allowed("User:svc-7", local, topic, "topic-1007", read) }); n != 0 {
		t.Fatalf("a check allocates %v times", n)
	}
	if got := len(a.byPrincipal["User:svc-7"]); got != 20 {
		t.Fatalf("principal index holds %d rules, want 20", got)
	}
}

// TestReload: a changed file applies; a broken one keeps the rules in
// force; a fixed one applies again.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "rules.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		// A different size and time, so the stamp check sees it.
		ts := time.Now().Add(time.Duration(len(s)) * time.Second)
		if err := os.Chtimes(f, ts, ts); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(name string) string {
		return "acls:\n  - principal: User:a\n    resource: {type: topic, name: " + name + "}\n    operation: Read\n"
	}
	write(rule("one"))
	s, err := Open(Config{Paths: []string{f}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	may := func(name string) bool { return s.Authorizer().Allowed("User:a", local, topic, name, read) }
	if !may("one") {
		t.Fatal("rule not loaded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write(rule("two-two"))
	waitFor("the changed rule", func() bool { return may("two-two") && !may("one") })
	write("acls:\n  - principal: nobody\n")
	time.Sleep(100 * time.Millisecond)
	if !may("two-two") {
		t.Fatal("a broken file replaced the rules in force")
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	write(rule("three-three-three"))
	waitFor("the fixed rule", func() bool { return may("three-three-three") })
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(strimziUsers))
	f.Add([]byte("acls:\n  - principal: User:a\n    resource: {type: topic, name: t, patternType: prefix}\n    operations: [Read, All]\n    host: ::1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		a := New(rules, nil, true)
		for _, r := range rules {
			if r.Principal == "" || (r.Resource != cluster && r.Name == "") {
				t.Fatalf("incomplete rule %+v", r)
			}
			a.Allowed(r.Principal, local, r.Resource, r.Name, r.Operation)
		}
	})
}
