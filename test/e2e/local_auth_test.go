package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLocalAuth: every client authenticates to the proxy (--auth-local-*)
// with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, then produces and consumes
// (kafka-python speaks SaslHandshake v0 and raw tokens, the others v1 with
// SaslAuthenticate); with a wrong password each fails with an
// authentication error. The users file is written by the binary's own
// `users add`, as an operator would.
func TestLocalAuth(t *testing.T) {
	s := suiteFor(t)
	usersFile := filepath.Join(s.tmp, "local-auth-users.yaml")
	if r := s.run(clientCtx(t), "alice-secret\n", s.bin, "users", "add", "--file", usersFile, "--user", "alice"); r.err != nil {
		t.Fatalf("users add: %s", r)
	}
	tg, err := s.startTarget("plaintext", 0, 0, "--auth-local-enable", "--auth-local-mechanism", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"--auth-local-users-file", usersFile, "--log-level", "debug")
	if err != nil {
		t.Fatalf("start demo with local SASL: %v", err)
	}
	defer func() {
		if err := tg.demo.stop(); err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", tg.demo.out.String())
		}
	}()
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		for _, c := range secureClients {
			t.Run(mech+"/"+c.name, func(t *testing.T) {
				tg.sasl = &clientSASL{mech, "alice", "alice-secret"}
				tg.suffix = "-" + strings.ToLower(mech)
				c.run(t, s, tg)
			})
			t.Run(mech+"/"+c.name+"/wrong-password", func(t *testing.T) {
				tg.sasl = &clientSASL{mech, "alice", "wrong-password"}
				tg.suffix = "-" + strings.ToLower(mech) + "-refused"
				wrongPassword(t, s, tg, c.name)
			})
		}
	}
	log := tg.demo.out.String()
	if strings.Contains(log, "alice-secret") || strings.Contains(log, "wrong-password") {
		t.Error("a password reached the proxy's log")
	}
	if n := strings.Count(log, "client authentication failed"); n < 12 {
		t.Errorf("%d failed authentications logged, want one per client and mechanism (12)", n)
	}
}

// wrongPassword runs one client with tg.sasl's (wrong) credentials: it must
// report an authentication error, and deliver nothing.
func wrongPassword(t *testing.T, s *suite, tg *target, client string) {
	ctx := clientCtx(t)
	topic := "e2e-refused" + tg.suffix
	if client == "kcat" {
		r := s.run(ctx, "", append([]string{lookKcat(t), "-L", "-b", tg.bootstrap, "-m", "3"}, tg.kcatArgs()...)...)
		if r.err == nil || !strings.Contains(r.stderr, "Authentication failed") {
			t.Fatalf("kcat -L with a wrong password: want a failure naming the authentication:\n%s", r)
		}
		return
	}
	name := map[string]string{"confluent-kafka-python": "confluent", "kafka-python": "kafkapython", "kafkajs": "kafkajs"}[client]
	argv := append(clientProgram(t, s, name), tg.bootstrap, topic)
	start := time.Now()
	r := s.run(ctx, "", tg.withEnv(argv, "KAFKA_EXPECT_AUTH_FAILURE=1")...)
	if r.err != nil || !strings.Contains(r.stdout, ": OK authentication refused") {
		t.Fatalf("%s with a wrong password (%s):\n%s", client, time.Since(start).Round(time.Millisecond), r)
	}
}
