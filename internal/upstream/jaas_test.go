package upstream

import (
	"strings"
	"testing"
	"time"
)

func TestParseJAAS(t *testing.T) {
	ok := []struct {
		name, src, user, pass string
		mechs                 []string
	}{
		{"property value", `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="al;ce";`, "alice", "al;ce", []string{"PLAIN"}},
		{"section", "// client\nKafkaClient {\n  org.apache.kafka.common.security.scram.ScramLoginModule required\n    username=\"bob\"\n    password=\"p\\\"w\\\\x\";\n};\n", "bob", `p"w\x`, []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}},
		{"comments and extra options", "/* a\n b */ KafkaClient { org.apache.kafka.common.security.plain.PlainLoginModule optional # x\n serviceName=kafka username=\"u\" password=\"p\"; };", "u", "p", []string{"PLAIN"}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			j, err := ParseJAAS(tc.src)
			if err != nil {
				t.Fatalf("ParseJAAS: %v", err)
			}
			if j.Options["username"] != tc.user || j.Options["password"] != tc.pass || strings.Join(j.Mechanisms, ",") != strings.Join(tc.mechs, ",") {
				t.Fatalf("got %+v", j)
			}
		})
	}

	bad := []struct {
		name, src, want string
	}{
		{"empty", "", "jaas line 1: no login module entry found"},
		{"unknown module", "KafkaClient {\n  com.sun.security.auth.module.Krb5LoginModule required;\n};", `jaas line 2: login module "com.sun.security.auth.module.Krb5LoginModule" is not supported`},
		{"missing flag", "org.apache.kafka.common.security.plain.PlainLoginModule\n username=\"u\";", `jaas line 2: "username" is not a control flag`},
		{"missing semicolon", "org.apache.kafka.common.security.plain.PlainLoginModule required\nusername=\"u\"\npassword=\"s3cret\"\n", "jaas line 4: unexpected end of input: missing ';'"},
		{"unterminated quote", "org.apache.kafka.common.security.plain.PlainLoginModule required\nusername=\"u\"\npassword=\"s3cret;\n", "jaas line 3: option password: unterminated quoted value"},
		{"missing equals", "org.apache.kafka.common.security.plain.PlainLoginModule required username \"u\";", "jaas line 1: expected '=' after option username"},
		{"no password", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\";", "jaas line 1: org.apache.kafka.common.security.scram.ScramLoginModule needs a non-empty password option"},
		{"duplicate", "org.apache.kafka.common.security.plain.PlainLoginModule required\nusername=\"u\"\nusername=\"v\" password=\"s3cret\";", "jaas line 3: option username is set twice"},
		{"unclosed section", "KafkaClient {\norg.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"s3cret\";\n", "missing '}' to close section KafkaClient"},
		{"junk", "KafkaClient { ;", `jaas line 1: expected a login module class name, found ";"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJAAS(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseJAAS = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatal("error contains the password")
			}
		})
	}
}

func TestParseTokenOutput(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	jwt := "eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDA2MDB9.sig" // exp 1700000600
	cases := []struct {
		name, out, tok string
		exp            time.Time
		wantErr        string
	}{
		{"plain", "abc\n", "abc", time.Time{}, ""},
		{"with unix expiry", "abc\n1700000900\n", "abc", time.Unix(1_700_000_900, 0), ""},
		{"with rfc3339 expiry", "abc\n2023-11-14T22:28:20Z", "abc", time.Unix(1_700_000_900, 0), ""},
		{"json expires_in", `{"access_token":"abc","expires_in":60}`, "abc", now.Add(time.Minute), ""},
		{"json expires_at", `{"token":"abc","expires_at":"2023-11-14T22:28:20Z"}`, "abc", time.Unix(1_700_000_900, 0), ""},
		{"jwt exp", jwt, jwt, time.Unix(1_700_000_600, 0), ""},
		{"empty", "  \n", "", time.Time{}, "empty"},
		{"bad expiry", "abc\nsoon", "", time.Time{}, `line 2 (expiry): "soon" is neither RFC 3339 nor Unix seconds`},
		{"extra lines", "abc\n1\n2", "", time.Time{}, "3 lines"},
		{"bad json", `{"token":`, "", time.Time{}, "not a JSON object"},
		{"json without token", `{"expires_in":1}`, "", time.Time{}, `no "token" or "access_token"`},
		{"spaces", "a b", "", time.Time{}, "whitespace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, exp, err := parseTokenOutput(tc.out, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || tok != tc.tok || !exp.Equal(tc.exp) {
				t.Fatalf("got %q %v %v, want %q %v", tok, exp, err, tc.tok, tc.exp)
			}
		})
	}
}

func TestCachedTokenFreshness(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := cachedToken{token: "t", fetched: t0, expiry: t0.Add(15 * time.Minute)}
	if !c.fresh(t0.Add(11 * time.Minute)) {
		t.Error("token at 73% of its life should be reused")
	}
	if c.fresh(t0.Add(12 * time.Minute)) {
		t.Error("token at 80% of its life should be refreshed")
	}
	u := cachedToken{token: "t", fetched: t0}
	if !u.fresh(t0.Add(59*time.Second)) || u.fresh(t0.Add(time.Minute)) {
		t.Error("token without expiry should be reused for a minute")
	}
}

func TestScrub(t *testing.T) {
	err := scrubErr(errBoom("login as bob with hunter2 failed"), []string{"hunter2", "", "ab"})
	if err.Error() != "login as bob with <redacted> failed" {
		t.Fatal(err)
	}
}

type errBoom string

func (e errBoom) Error() string { return string(e) }
