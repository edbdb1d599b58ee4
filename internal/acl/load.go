package acl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds one rule file (read whole before parsing).
const MaxFileSize = 64 << 20

// LoadPaths reads every rule of the files and directories (their *.yaml
// and *.yml files, sorted) given. Every problem is reported, each with its
// file, line and path in the document; any problem fails the whole load,
// so a half-read rule set never takes effect.
func LoadPaths(paths []string) ([]Rule, error) {
	var rules []Rule
	var errs []error
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			rs, err := loadFile(f)
			errs = append(errs, err)
			rules = append(rules, rs...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rules, nil
}

// expand lists a directory's rule files, or returns the file itself.
func expand(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("acl file: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(p, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	return files, nil
}

func loadFile(name string) ([]Rule, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("acl file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("acl file %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("acl file %s: larger than %d bytes", name, MaxFileSize)
	}
	return Parse(name, data)
}

// Parse reads the rules of one YAML stream: Strimzi KafkaUser manifests
// and plain rule lists (a document with a top-level "acls"), any number
// of each.
func Parse(name string, data []byte) ([]Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var rules []Rule
	var errs []error
	for doc := 1; ; doc++ {
		var n yaml.Node
		if err := dec.Decode(&n); err == io.EOF {
			break
		} else if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", name, doc, err))
			break
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			n = *n.Content[0]
		}
		if n.Kind == 0 || n.Tag == "!!null" {
			continue // an empty document, as between two "---"
		}
		p := &parser{file: name, doc: doc}
		rules = append(rules, p.document(&n)...)
		errs = append(errs, p.errs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rules, nil
}

// parser walks one document, collecting every problem with its path.
type parser struct {
	file string
	doc  int
	errs []error
}

func (p *parser) fail(n *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: document %d: %s: %s", p.file, n.Line, p.doc, path, fmt.Sprintf(format, args...)))
}

// fields checks that n is a mapping with only the allowed keys and
// returns its values by key.
func (p *parser) fields(n *yaml.Node, path string, allowed ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.fail(n, path, "expected a mapping")
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(allowed, k.Value):
			p.fail(k, join(path, k.Value), "unknown field (known: %s)", strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.fail(k, join(path, k.Value), "given twice")
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (p *parser) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, path, "expected a string")
		return ""
	}
	return n.Value
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// document reads a KafkaUser or a plain rule list.
func (p *parser) document(n *yaml.Node) []Rule {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "(document)", "expected a KafkaUser or a mapping with acls")
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" || n.Content[i].Value == "apiVersion" {
			return p.kafkaUser(n)
		}
	}
	f := p.fields(n, "", "acls")
	if f["acls"] == nil {
		p.fail(n, "acls", "missing (a plain rule list), or give kind: KafkaUser")
		return nil
	}
	return p.acls(f["acls"], "acls", "")
}

// objectMeta are the fields of Kubernetes' ObjectMeta: accepted, only the
// name is used.
var objectMeta = []string{"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
	"creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "ownerReferences",
	"managedFields", "generateName", "selfLink"}

// kafkaUser reads a Strimzi KafkaUser (v1beta1, v1beta2): its ACLs apply
// to the principal the User Operator gives it: User:CN=<name> for tls
// authentication (the subject of the certificate it issues, as Kafka's
// DEFAULT mapping prints it), User:<name> otherwise.
func (p *parser) kafkaUser(n *yaml.Node) []Rule {
	f := p.fields(n, "", "apiVersion", "kind", "metadata", "spec", "status")
	if f == nil {
		return nil
	}
	if v := f["apiVersion"]; v == nil {
		p.fail(n, "apiVersion", "missing")
	} else if s := p.str(v, "apiVersion"); s != "kafka.strimzi.io/v1beta1" && s != "kafka.strimzi.io/v1beta2" && s != "kafka.strimzi.io/v1" {
		p.fail(v, "apiVersion", "%q: expected kafka.strimzi.io/v1beta1, v1beta2 or v1", s)
	}
	if v := f["kind"]; v == nil {
		p.fail(n, "kind", "missing")
	} else if s := p.str(v, "kind"); s != "KafkaUser" {
		p.fail(v, "kind", "%q: only KafkaUser documents hold ACLs", s)
	}
	var name string
	if m := f["metadata"]; m == nil {
		p.fail(n, "metadata.name", "missing")
	} else if mf := p.fields(m, "metadata", objectMeta...); mf != nil {
		if mf["name"] == nil {
			p.fail(m, "metadata.name", "missing")
		} else {
			name = p.str(mf["name"], "metadata.name")
		}
	}
	spec := f["spec"]
	if spec == nil {
		return nil // a user without authorization has no rules
	}
	sf := p.fields(spec, "spec", "authentication", "authorization", "quotas", "template")
	principal := "User:" + name
	if a := sf["authentication"]; a != nil {
		af := p.fields(a, "spec.authentication", "type", "password")
		if t := af["type"]; t != nil {
			switch s := p.str(t, "spec.authentication.type"); s {
			case "tls":
				principal = "User:CN=" + name
			case "tls-external", "scram-sha-512":
			default:
				p.fail(t, "spec.authentication.type", "%q: expected tls, tls-external or scram-sha-512", s)
			}
		}
	}
	az := sf["authorization"]
	if az == nil {
		return nil
	}
	zf := p.fields(az, "spec.authorization", "type", "acls")
	if t := zf["type"]; t == nil {
		p.fail(az, "spec.authorization.type", "missing (simple)")
	} else if s := p.str(t, "spec.authorization.type"); s != "simple" {
		p.fail(t, "spec.authorization.type", "%q: only simple authorization has ACLs", s)
	}
	if zf["acls"] == nil {
		return nil
	}
	if name == "" {
		return nil // reported above
	}
	return p.acls(zf["acls"], "spec.authorization.acls", principal)
}

// acls reads a rule list. principal is the KafkaUser's, or "" for a plain
// list, whose entries name their own.
func (p *parser) acls(n *yaml.Node, path, principal string) []Rule {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, path, "expected a list")
		return nil
	}
	var rules []Rule
	for i, e := range n.Content {
		rules = append(rules, p.rule(e, fmt.Sprintf("%s[%d]", path, i), principal)...)
	}
	return rules
}

// rule reads one entry: one Rule per operation.
func (p *parser) rule(n *yaml.Node, path, principal string) []Rule {
	known := []string{"resource", "operation", "operations", "host", "type"}
	if principal == "" {
		known = append(known, "principal")
	}
	f := p.fields(n, path, known...)
	if f == nil {
		return nil
	}
	r := Rule{Principal: principal, Host: "*", Source: fmt.Sprintf("%s: document %d: %s", p.file, p.doc, path)}
	if principal == "" {
		if v := f["principal"]; v == nil {
			p.fail(n, join(path, "principal"), "missing (User:<name>, or User:* for everyone)")
		} else if s := p.str(v, join(path, "principal")); !strings.HasPrefix(s, "User:") || len(s) == len("User:") {
			p.fail(v, join(path, "principal"), "%q: expected User:<name> or User:*", s)
		} else {
			r.Principal = s
		}
	}
	if v := f["resource"]; v == nil {
		p.fail(n, join(path, "resource"), "missing")
	} else {
		p.resource(v, join(path, "resource"), &r)
	}
	if v := f["host"]; v != nil {
		h := p.str(v, join(path, "host"))
		if h != "*" && net.ParseIP(h) == nil {
			p.fail(v, join(path, "host"), "%q: expected * or an IP address (Kafka matches the client's address)", h)
		}
		r.Host = h
	}
	if v := f["type"]; v != nil {
		switch s := p.str(v, join(path, "type")); s {
		case "allow":
		case "deny":
			r.Deny = true
		default:
			p.fail(v, join(path, "type"), "%q: expected allow or deny", s)
		}
	}
	var ops []*yaml.Node
	switch one, many := f["operation"], f["operations"]; {
	case one != nil && many != nil:
		p.fail(n, join(path, "operations"), "give operation or operations, not both")
	case one != nil:
		ops = []*yaml.Node{one}
	case many != nil && many.Kind == yaml.SequenceNode && len(many.Content) > 0:
		ops = many.Content
	case many != nil:
		p.fail(many, join(path, "operations"), "expected a non-empty list")
	default:
		p.fail(n, join(path, "operations"), "missing")
	}
	var rules []Rule
	for i, o := range ops {
		op, ok := operations[p.str(o, fmt.Sprintf("%s.operations[%d]", path, i))]
		if !ok {
			p.fail(o, fmt.Sprintf("%s.operations[%d]", path, i), "%q: expected one of %s", o.Value, operationNames)
			continue
		}
		r.Operation = op
		rules = append(rules, r)
	}
	return rules
}

func (p *parser) resource(n *yaml.Node, path string, r *Rule) {
	f := p.fields(n, path, "type", "name", "patternType")
	if f == nil {
		return
	}
	if v := f["type"]; v == nil {
		p.fail(n, join(path, "type"), "missing")
	} else {
		switch s := p.str(v, join(path, "type")); s {
		case "topic":
			r.Resource = kmsg.ACLResourceTypeTopic
		case "group":
			r.Resource = kmsg.ACLResourceTypeGroup
		case "cluster":
			r.Resource = kmsg.ACLResourceTypeCluster
		case "transactionalId":
			r.Resource = kmsg.ACLResourceTypeTransactionalId
		default:
			p.fail(v, join(path, "type"), "%q: expected topic, group, cluster or transactionalId", s)
		}
	}
	if v := f["patternType"]; v != nil {
		switch s := p.str(v, join(path, "patternType")); s {
		case "literal":
		case "prefix":
			r.Prefix = true
		default:
			p.fail(v, join(path, "patternType"), "%q: expected literal or prefix", s)
		}
	}
	if r.Resource == kmsg.ACLResourceTypeCluster {
		if v := f["name"]; v != nil {
			p.fail(v, join(path, "name"), "the cluster resource has no name")
		}
		r.Name, r.Prefix = ClusterName, false
		return
	}
	if v := f["name"]; v == nil {
		p.fail(n, join(path, "name"), "missing")
	} else if r.Name = p.str(v, join(path, "name")); r.Name == "" {
		p.fail(v, join(path, "name"), "empty")
	}
}

// operations are Strimzi's spellings of Kafka's operations.
var operations = map[string]kmsg.ACLOperation{
	"Read":            kmsg.ACLOperationRead,
	"Write":           kmsg.ACLOperationWrite,
	"Create":          kmsg.ACLOperationCreate,
	"Delete":          kmsg.ACLOperationDelete,
	"Alter":           kmsg.ACLOperationAlter,
	"Describe":        kmsg.ACLOperationDescribe,
	"ClusterAction":   kmsg.ACLOperationClusterAction,
	"AlterConfigs":    kmsg.ACLOperationAlterConfigs,
	"DescribeConfigs": kmsg.ACLOperationDescribeConfigs,
	"IdempotentWrite": kmsg.ACLOperationIdempotentWrite,
	"All":             kmsg.ACLOperationAll,
}

const operationNames = "Read, Write, Create, Delete, Alter, Describe, ClusterAction, AlterConfigs, DescribeConfigs, IdempotentWrite, All"

// ParsePrincipals reads --acl-super-users: principals separated by
// semicolons, as Kafka's super.users.
func ParsePrincipals(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "User:") || len(p) == len("User:") {
			return nil, fmt.Errorf("super user %q: expected User:<name>", p)
		}
		out = append(out, p)
	}
	return out, nil
}
