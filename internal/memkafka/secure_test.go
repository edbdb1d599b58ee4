package memkafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

var testSecrets = map[string]string{TestAWSAccessKeyID: TestAWSSecretAccessKey}

func TestVerifyMSKIAMToken(t *testing.T) {
	ctx := context.Background()
	sign := func(secret string) string {
		tok, _, err := signer.GenerateAuthTokenFromCredentialsProvider(ctx, TestAWSRegion,
			credentials.NewStaticCredentialsProvider(TestAWSAccessKeyID, secret, ""))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	p, exp, err := verifyMSKIAMToken(sign(TestAWSSecretAccessKey), testSecrets, now)
	if err != nil || p != TestAWSAccessKeyID || exp.Sub(now) < 14*time.Minute {
		t.Fatalf("valid token: %q %v %v", p, exp, err)
	}
	if _, _, err := verifyMSKIAMToken(sign("wrong"), testSecrets, now); err == nil || !strings.Contains(err.Error(), "signature does not match") {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, _, err := verifyMSKIAMToken(sign(TestAWSSecretAccessKey), testSecrets, now.Add(16*time.Minute)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired: %v", err)
	}
	if _, _, err := verifyMSKIAMToken("!!", testSecrets, now); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestVerifyAWSMSKIAMPayload(t *testing.T) {
	t.Setenv("AWS_REGION", TestAWSRegion) // 127.0.0.1 names no region
	payload := func(secret string) []byte {
		m := saslaws.Auth{AccessKey: TestAWSAccessKeyID, SecretKey: secret}.AsManagedStreamingIAMMechanism()
		_, b, err := m.Authenticate(context.Background(), "127.0.0.1:9098")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if p, _, err := verifyAWSMSKIAMPayload(payload(TestAWSSecretAccessKey), testSecrets, time.Now()); err != nil || p != TestAWSAccessKeyID {
		t.Fatalf("valid payload: %q %v", p, err)
	}
	if _, _, err := verifyAWSMSKIAMPayload(payload("wrong"), testSecrets, time.Now()); err == nil || !strings.Contains(err.Error(), "signature does not match") {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestJWTIssuer(t *testing.T) {
	a, _ := NewJWTIssuer()
	b, _ := NewJWTIssuer()
	now := time.Now()
	if sub, _, err := a.Verify(a.Issue("alice", time.Minute), now); err != nil || sub != "alice" {
		t.Fatalf("valid: %q %v", sub, err)
	}
	if _, _, err := a.Verify(b.Issue("alice", time.Minute), now); err == nil {
		t.Fatal("token from another key accepted")
	}
	if _, _, err := a.Verify(a.Issue("alice", -time.Minute), now); err == nil {
		t.Fatal("expired token accepted")
	}
}

// TestKgoThroughFronts checks the fronts with a real client that renews
// its sessions itself (franz-go re-authenticates at 95–98% of the
// lifetime): records flow and no connection is closed for expiry.
func TestKgoThroughFronts(t *testing.T) {
	for _, mode := range []SecurityMode{MTLS, SCRAM512TLS, OAuthJWTFile} {
		t.Run(mode.String(), func(t *testing.T) {
			c, err := NewSecureCluster(t.TempDir(), mode, WithBrokers(1), WithSessionLifetime(1500*time.Millisecond),
				WithKfakeOpts(kfake.SeedTopics(1, "t")))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			opts := []kgo.Opt{kgo.SeedBrokers(c.Addrs...), kgo.ConsumeTopics("t"), kgo.DefaultProduceTopic("t")}
			if mode.TLS() {
				pool := x509.NewCertPool()
				pool.AddCert(c.Root.Cert)
				tc := &tls.Config{RootCAs: pool}
				if mode == MTLS {
					kp, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
					if err != nil {
						t.Fatal(err)
					}
					tc.Certificates = []tls.Certificate{kp}
				}
				opts = append(opts, kgo.DialTLSConfig(tc))
			}
			var mech sasl.Mechanism
			switch mode {
			case SCRAM512TLS:
				mech = scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism()
			case OAuthJWTFile:
				mech = oauth.Oauth(func(context.Context) (oauth.Auth, error) {
					return oauth.Auth{Token: c.JWT.Issue("proxy-user", time.Hour)}, nil
				})
			}
			if mech != nil {
				opts = append(opts, kgo.SASL(mech))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			deadline := time.Now().Add(3500 * time.Millisecond)
			sent, got := 0, 0
			for time.Now().Before(deadline) {
				if err := cl.ProduceSync(ctx, kgo.StringRecord("v")).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
				sent++
				time.Sleep(100 * time.Millisecond)
			}
			for got < sent {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("fetch: %v", err)
				}
				got += fs.NumRecords()
			}
			st := c.Stats()
			if st.ExpiredClosed != 0 {
				t.Fatalf("stats = %+v: a connection outlived its session", st)
			}
			if mode != MTLS && st.Reauthenticated == 0 {
				t.Fatalf("stats = %+v: no re-authentication in %d session lifetimes", st, 2)
			}
		})
	}
}
