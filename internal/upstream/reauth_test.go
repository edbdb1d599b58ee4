package upstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

// TestReauthenticate keeps one connection alive across several session
// expiries by re-authenticating at ~85% of each lifetime, as the proxy
// session does, and checks the front never had to close it.
func TestReauthenticate(t *testing.T) {
	const lifetime = 1200 * time.Millisecond
	modes := []memkafka.SecurityMode{memkafka.SASLPlain, memkafka.SCRAM512TLS, memkafka.OAuthJWTFile, memkafka.MSKIAMOAuth, memkafka.MSKIAM}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := kafkatest.StartSecureCluster(t, mode, memkafka.WithBrokers(1), memkafka.WithSessionLifetime(lifetime))
			d, hooks, _ := newDialer(t, c.Kafka)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := d.Dial(ctx, c.Addrs[0])
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			if conn.SessionLifetime <= 0 || conn.SessionLifetime > lifetime {
				t.Fatalf("SessionLifetime = %v, want (0, %v]", conn.SessionLifetime, lifetime)
			}
			rt := upstream.NewConnRoundTripper(conn, "test")
			next := conn.SessionLifetime
			for i := 0; i < 3; i++ {
				time.Sleep(next * 85 / 100)
				checkMetadata(t, ctx, rt, c.Addrs)
				if next, err = d.Reauthenticate(ctx, c.Addrs[0], rt); err != nil {
					t.Fatalf("Reauthenticate %d: %v", i, err)
				}
				if next <= 0 {
					t.Fatalf("Reauthenticate %d: lifetime %v", i, next)
				}
			}
			checkMetadata(t, ctx, rt, c.Addrs)
			st := c.Stats()
			if st.Reauthenticated != 3 || st.ExpiredClosed != 0 {
				t.Fatalf("front stats = %+v, want 3 re-authentications and no expiry", st)
			}
			if hooks.count("reauth") != 3 {
				t.Errorf("hooks = %v", hooks.events)
			}

			// Without re-authentication the broker closes the connection
			// at the first request after expiry.
			time.Sleep(next + 100*time.Millisecond)
			if _, err := rt.RoundTrip(ctx, kmsg.NewPtrMetadataRequest()); err == nil {
				t.Fatal("request after session expiry succeeded")
			}
			if st := c.Stats(); st.ExpiredClosed != 1 {
				t.Fatalf("front stats = %+v, want 1 expired connection", st)
			}
		})
	}
}

func TestExpiryAtDeadline(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.SCRAM256, memkafka.WithBrokers(1),
		memkafka.WithSessionLifetime(500*time.Millisecond), memkafka.WithExpiryAtDeadline())
	d, _, _ := newDialer(t, c.Kafka)
	conn, err := d.Dial(context.Background(), c.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from an idle connection")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("idle connection closed after %v, want ~500ms", took)
	}
}

func TestReauthenticatePrincipalChange(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.OAuthJWTFile, memkafka.WithBrokers(1), memkafka.WithSessionLifetime(time.Minute))
	d, hooks, _ := newDialer(t, c.Kafka)
	ctx := context.Background()
	conn, err := d.Dial(ctx, c.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kafkatest.WriteToken(t, c, "someone-else", time.Hour)
	_, err = d.Reauthenticate(ctx, c.Addrs[0], upstream.NewConnRoundTripper(conn, ""))
	if err == nil || !strings.Contains(err.Error(), "re-authentication") || !strings.Contains(err.Error(), c.Addrs[0]) {
		t.Fatalf("Reauthenticate = %v, want a re-authentication error naming the broker", err)
	}
	if hooks.count("fail") != 1 {
		t.Errorf("hooks = %v", hooks.events)
	}
}

func TestReauthenticateWithoutSASL(t *testing.T) {
	c := kafkatest.StartSecureCluster(t, memkafka.TLSOnly, memkafka.WithBrokers(1))
	d, _, _ := newDialer(t, c.Kafka)
	if _, err := d.Reauthenticate(context.Background(), c.Addrs[0], nil); err == nil {
		t.Fatal("Reauthenticate without SASL succeeded")
	}
}
