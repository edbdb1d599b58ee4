package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// aliceKafkaUser is alice's Strimzi KafkaUser: everything on the e2e-
// topics but e2e-denied-* (deny beats allow), Read on the e2e- groups,
// Describe on the demo's seeded topic.
const aliceKafkaUser = `apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaUser
metadata:
  name: alice
spec:
  authentication:
    type: scram-sha-512
  authorization:
    type: simple
    acls:
      - resource: {type: topic, name: e2e-, patternType: prefix}
        operations: [All]
      - resource: {type: topic, name: e2e-denied, patternType: prefix}
        operations: [All]
        type: deny
      - resource: {type: group, name: e2e-, patternType: prefix}
        operation: Read
      - resource: {type: topic, name: demo, patternType: literal}
        operation: Describe
`

// TestACLClients: every client authenticates to the proxy as alice and
// works under her ACLs (a Strimzi KafkaUser): kcat, confluent-kafka-python,
// kafka-python and kafkajs produce and consume with consumer groups on the
// topics she may use, including an idempotent producer (confluent) and a
// CreateTopics (kafka-python). A produce to a topic a deny rule covers
// fails in each of them with TOPIC_AUTHORIZATION_FAILED, by name (for
// kafka-python, whose producer only times out, in its Metadata), and a
// kcat group consumer on a group she may not read fails with Group
// authorization failed. Every denial is in the audit trail, with her
// principal, and nothing denied reaches the brokers (they never create
// the denied topics).
func TestACLClients(t *testing.T) {
	s := suiteFor(t)
	usersFile := filepath.Join(s.tmp, "acl-users.yaml")
	for _, u := range []string{"alice", "admin"} {
		if r := s.run(clientCtx(t), u+"-secret\n", s.bin, "users", "add", "--file", usersFile, "--user", u); r.err != nil {
			t.Fatalf("users add: %s", r)
		}
	}
	aclFile := filepath.Join(s.tmp, "acl-alice.yaml")
	if err := os.WriteFile(aclFile, []byte(aliceKafkaUser), 0o600); err != nil {
		t.Fatal(err)
	}
	auditFile := filepath.Join(s.tmp, "acl-audit.log")
	tg, err := s.startTarget("plaintext", 0, 0, "--auth-local-enable", "--auth-local-mechanism", "SCRAM-SHA-512",
		"--auth-local-users-file", usersFile, "--acl-file", aclFile, "--acl-super-users", "User:admin", "--audit-log", auditFile)
	if err != nil {
		t.Fatalf("start demo with ACLs: %v", err)
	}
	defer func() {
		if err := tg.demo.stop(); err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", tg.demo.out.tail(120))
		}
	}()
	tg.sasl = &clientSASL{"SCRAM-SHA-512", "alice", "alice-secret"}
	tg.suffix = "-acl"
	for _, c := range secureClients {
		t.Run(c.name, func(t *testing.T) { c.run(t, s, tg) })
		t.Run(c.name+"/denied-topic", func(t *testing.T) { deniedTopic(t, s, tg, c.name) })
	}
	t.Run("kcat/denied-group", func(t *testing.T) {
		// A group consumer keeps running after the error: stop it after a
		// while and read what it reported.
		ctx, cancel := context.WithTimeout(clientCtx(t), 15*time.Second)
		defer cancel()
		r := s.run(ctx, "", append(append([]string{lookKcat(t), "-b", tg.bootstrap}, tg.kcatArgs()...),
			"-G", "other-group", "-o", "beginning", "-q", "e2e-kcat-acl")...)
		if !strings.Contains(r.stderr, "Group authorization failed") {
			t.Fatalf("kcat -G other-group: want Group authorization failed:\n%s", r)
		}
	})

	var audit string
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(auditFile)
		audit = string(b)
		if strings.Count(audit, `"resource_name":"e2e-denied-`) >= len(secureClients) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range secureClients {
		topic := deniedTopicName(c.name)
		if !strings.Contains(audit, `"resource_name":"`+topic+`"`) {
			t.Errorf("no audit record of the denial on %s:\n%s", topic, tailLines(audit, 20))
		}
	}
	if !strings.Contains(audit, `"principal":"User:alice"`) || !strings.Contains(audit, `"resource_name":"other-group"`) {
		t.Errorf("audit trail lacks alice's group denial:\n%s", tailLines(audit, 20))
	}

	// Nothing denied reached the brokers: they never auto-created the
	// denied topics (a super user's listing is the brokers' own), and
	// alice's listing shows her topics only.
	admin := *tg
	admin.sasl = &clientSASL{"SCRAM-SHA-512", "admin", "admin-secret"}
	for _, who := range []*target{&admin, tg} {
		r := s.run(clientCtx(t), "", append([]string{lookKcat(t), "-L", "-b", tg.bootstrap, "-m", "30"}, who.kcatArgs()...)...)
		kcatOK(t, "-L", r)
		if strings.Contains(r.stdout, "e2e-denied-") || !strings.Contains(r.stdout, `"e2e-kcat-acl"`) {
			t.Errorf("%s's listing: want e2e-kcat-acl and no e2e-denied-* topic:\n%s", who.sasl.user, r.stdout)
		}
	}
}

func deniedTopicName(client string) string { return "e2e-denied-" + client }

// deniedTopic has one client produce to a topic alice's ACLs deny: it must
// fail with TOPIC_AUTHORIZATION_FAILED, reported by the client by name.
func deniedTopic(t *testing.T, s *suite, tg *target, client string) {
	ctx := clientCtx(t)
	topic := deniedTopicName(client)
	if client == "kcat" {
		r := s.run(ctx, "k:must-not-arrive\n", append([]string{lookKcat(t), "-P", "-b", tg.bootstrap, "-t", topic, "-K:",
			"-X", "message.timeout.ms=15000"}, tg.kcatArgs()...)...)
		if !strings.Contains(r.stderr, "Topic authorization failed") {
			t.Fatalf("kcat -P to %s: want Topic authorization failed:\n%s", topic, r)
		}
		return
	}
	name := map[string]string{"confluent-kafka-python": "confluent", "kafka-python": "kafkapython", "kafkajs": "kafkajs"}[client]
	argv := append(clientProgram(t, s, name), tg.bootstrap, topic)
	r := s.run(ctx, "", tg.withEnv(argv, "KAFKA_EXPECT_DENIED=TOPIC_AUTHORIZATION_FAILED")...)
	if r.err != nil || !strings.Contains(r.stdout, ": OK denied: TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("%s producing to %s:\n%s", client, topic, r)
	}
	t.Log(strings.TrimSpace(lastLine(r.stdout)))
}

// TestIPFilterFromNamespace: the clients run in their own network
// namespace, so the proxy sees them at the namespace's address, not
// loopback. An allow list without that address refuses them at accept
// (with an audit record naming it); one with it serves them; and an ACL's
// host is matched against that address: a rule for the namespace's
// address allows, the same rule for 127.0.0.1 does not.
func TestIPFilterFromNamespace(t *testing.T) {
	s := suiteFor(t)
	if s.ns == nil {
		t.Skip("needs the clients' network namespace: " + s.warning)
	}
	kcat := lookKcat(t)
	nsIP := s.ns.nsIP
	start := func(t *testing.T, extra ...string) *target {
		tg, err := s.startTarget("plaintext", 0, 0, extra...)
		if err != nil {
			t.Fatalf("start demo: %v", err)
		}
		t.Cleanup(func() {
			if err := tg.demo.stop(); err != nil {
				t.Errorf("demo: %v", err)
			}
			if t.Failed() {
				t.Logf("demo log:\n%s", tg.demo.out.tail(60))
			}
		})
		return tg
	}

	t.Run("refused", func(t *testing.T) {
		auditFile := filepath.Join(s.tmp, "ipfilter-refused-audit.log")
		tg := start(t, "--proxy-listener-allow-cidr", "127.0.0.0/8", "--audit-log", auditFile)
		r := s.run(clientCtx(t), "", kcat, "-L", "-b", tg.bootstrap, "-m", "5")
		if r.err == nil {
			t.Fatalf("kcat -L from %s served with only 127.0.0.0/8 allowed:\n%s", nsIP, r)
		}
		var audit string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			b, _ := os.ReadFile(auditFile)
			if audit = string(b); strings.Contains(audit, `"client":"`+nsIP+`:`) {
				break
			}
		}
		if !strings.Contains(audit, `"event":"connection-rejected"`) || !strings.Contains(audit, `"client":"`+nsIP+`:`) {
			t.Fatalf("no connection-rejected audit record for %s:\n%s", nsIP, audit)
		}
	})

	t.Run("allowed, ACL host", func(t *testing.T) {
		aclFile := filepath.Join(s.tmp, "ipfilter-acls.yaml")
		rules := "acls:\n" +
			"  - {principal: 'User:*', resource: {type: topic, name: demo}, operation: Describe, host: '" + nsIP + "'}\n" +
			"  - {principal: 'User:*', resource: {type: topic, name: e2e-loopback-only}, operation: Describe, host: '127.0.0.1'}\n"
		if err := os.WriteFile(aclFile, []byte(rules), 0o600); err != nil {
			t.Fatal(err)
		}
		tg := start(t, "--proxy-listener-allow-cidr", nsIP+"/32", "--acl-file", aclFile)
		r := s.run(clientCtx(t), "", kcat, "-L", "-b", tg.bootstrap, "-t", "demo", "-m", "30")
		kcatOK(t, "-L -t demo", r)
		if !strings.Contains(r.stdout, `topic "demo" with 3 partitions`) {
			t.Fatalf("demo not described to %s:\n%s", nsIP, r.stdout)
		}
		r = s.run(clientCtx(t), "", kcat, "-L", "-b", tg.bootstrap, "-t", "e2e-loopback-only", "-m", "30")
		if !strings.Contains(r.stdout+r.stderr, "Topic authorization failed") {
			t.Fatalf("a rule for host 127.0.0.1 served %s:\n%s", nsIP, r)
		}
	})
}

// connLimitProbe opens connections to the address in argv[1] one after
// the other, holding each, and sends ApiVersions v0 on each: it prints
// "served" or "refused" per connection (refused: closed without an
// answer), then closes them all and tries one more.
const connLimitProbe = `
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
req = struct.pack(">ihhih", 10, 18, 0, 1, -1)
def probe():
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(req)
    try:
        head = s.recv(4)
    except (ConnectionResetError, socket.timeout):
        head = b""
    return s, ("served" if len(head) == 4 else "refused")
held = []
for i in range(n):
    s, what = probe()
    held.append(s)
    print(what, flush=True)
for s in held:
    s.close()
import time; time.sleep(0.5)
s, what = probe()
print("after close:", what, flush=True)
`

// TestConnectionLimitFromNamespace: with --proxy-listener-max-connections-
// per-ip 2, the namespace's address gets two connections and a third is
// refused at accept while the first two are still served; once they close,
// a new one is served.
func TestConnectionLimitFromNamespace(t *testing.T) {
	s := suiteFor(t)
	if s.ns == nil {
		t.Skip("needs the clients' network namespace: " + s.warning)
	}
	tg, err := s.startTarget("plaintext", 0, 0, "--proxy-listener-max-connections-per-ip", "2")
	if err != nil {
		t.Fatalf("start demo: %v", err)
	}
	defer func() {
		if err := tg.demo.stop(); err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	r := s.run(clientCtx(t), "", systemPython, "-c", connLimitProbe, tg.bootstrap, "3")
	if want := "served\nserved\nrefused\nafter close: served\n"; r.err != nil || r.stdout != want {
		t.Fatalf("connections from %s with a limit of 2 per address: want\n%s\ngot:\n%s", s.ns.nsIP, want, r)
	}
	if !strings.Contains(tg.demo.out.String(), "connection limits refused connections") {
		t.Errorf("no log line for the refusal:\n%s", tg.demo.out.tail(20))
	}
}
