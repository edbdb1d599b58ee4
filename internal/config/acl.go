package config

import (
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/acl"
)

// ACL is per-principal authorization on the proxy (--acl-*), with the
// semantics of Kafka's StandardAuthorizer.
type ACL struct {
	// Files are rule files or directories of *.yaml rule files: Strimzi
	// KafkaUser manifests or plain rule lists. None: no ACLs.
	Files []string `yaml:"files"`
	// SuperUsers is Kafka's super.users: "User:admin;User:ops".
	SuperUsers string `yaml:"superUsers"`
	// AllowEveryoneIfNoACLFound is Kafka's allow.everyone.if.no.acl.found.
	AllowEveryoneIfNoACLFound bool `yaml:"allowEveryoneIfNoAclFound"`
	// Refresh is how often the files are checked for changes (SIGHUP
	// reloads them at once); zero: only on SIGHUP.
	Refresh time.Duration `yaml:"refresh"`
}

// Audit is the audit trail (--audit-log).
type Audit struct {
	// Log is a file path or "stdout"; empty: no audit trail.
	Log string `yaml:"log"`
	// Allowed also records allowed ACL decisions.
	Allowed bool `yaml:"allowed"`
}

// Enabled reports whether any rule source is configured.
func (a ACL) Enabled() bool { return len(a.Files) > 0 }

func (c *Config) validateACL(p *Problems) {
	a := c.ACL
	if !a.Enabled() {
		if a.SuperUsers != "" || a.AllowEveryoneIfNoACLFound {
			p.add("acl.files", "super users or allow-everyone are set, but no rule file: nothing would be authorized (add --acl-file)")
		}
		return
	}
	if _, err := acl.ParsePrincipals(a.SuperUsers); err != nil {
		p.add("acl.superUsers", "%v (principals separated by semicolons)", err)
	}
	if a.Refresh < 0 {
		p.add("acl.refresh", "must not be negative")
	}
}
