package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

// saslReauth is Options.Reauthenticate as the upstream dialer does it: a
// SaslHandshake then a SaslAuthenticate over the session's own pipeline.
// It counts completed renewals and returns the broker's next lifetime.
func saslReauth(count *atomic.Int32) func(context.Context, upstream.RoundTripper) (time.Duration, error) {
	return func(ctx context.Context, rt upstream.RoundTripper) (time.Duration, error) {
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		resp, err := rt.RoundTrip(ctx, hs)
		if err != nil {
			return 0, fmt.Errorf("handshake: %w", err)
		}
		if err := kerr.ErrorForCode(resp.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
			return 0, fmt.Errorf("handshake: %w", err)
		}
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version, auth.SASLAuthBytes = 2, []byte("\x00user\x00secret")
		resp, err = rt.RoundTrip(ctx, auth)
		if err != nil {
			return 0, fmt.Errorf("authenticate: %w", err)
		}
		ar := resp.(*kmsg.SASLAuthenticateResponse)
		if err := kerr.ErrorForCode(ar.ErrorCode); err != nil {
			return 0, fmt.Errorf("authenticate: %w", err)
		}
		count.Add(1)
		return time.Duration(ar.SessionLifetimeMillis) * time.Millisecond, nil
	}
}

// saslBroker answers the proxy's SASL requests and echoes every other
// request's correlation id with a fixed body. It checks that nothing comes
// between a handshake and its authenticate (client requests are held), and
// returns lifetime(n) as the n-th renewal's session lifetime. It ends at
// the end of the stream, which it reports with the number of renewals.
func saslBroker(t *testing.T, c net.Conn, lifetime func(n int) time.Duration, handshakeDelay time.Duration) <-chan int {
	done := make(chan int, 1)
	go func() {
		n := 0
		defer func() { done <- n }()
		lastKey := int16(-1)
		for {
			f, err := readFrame(c)
			if err != nil {
				return
			}
			// Client bodies are opaque; only the proxy's own must decode.
			p, err := parseRequest(f)
			if err != nil && (p.Key == 17 || p.Key == 36) {
				t.Errorf("broker: bad %s request: %v", kmsg.NameForKey(p.Key), err)
				return
			}
			if lastKey == 17 && p.Key != 36 {
				t.Errorf("broker: %s arrived between SaslHandshake and SaslAuthenticate", kmsg.NameForKey(p.Key))
			}
			lastKey = p.Key
			var out []byte
			switch r := p.req.(type) {
			case *kmsg.SASLHandshakeRequest:
				time.Sleep(handshakeDelay)
				resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
				resp.SupportedMechanisms = []string{"PLAIN"}
				out = responseFrame(resp, p.CorrelationID)
			case *kmsg.SASLAuthenticateRequest:
				if string(r.SASLAuthBytes) != "\x00user\x00secret" {
					t.Errorf("broker: auth bytes %q", r.SASLAuthBytes)
				}
				resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
				resp.SessionLifetimeMillis = lifetime(n).Milliseconds()
				n++
				// Header tags must not confuse the proxy's own reader.
				out = responseFrame(resp, p.CorrelationID, []byte("tag"))
			default:
				out = rawResponse(p.CorrelationID, []byte("answer"))
			}
			if err := writeAll(c, out); err != nil {
				return
			}
		}
	}()
	return done
}

func reauthOptions(count *atomic.Int32) Options {
	opts := testOptions()
	opts.Reauthenticate = saslReauth(count)
	opts.MinSessionLifetime = 5 * time.Millisecond
	return opts
}

// While the client keeps requests in flight, the proxy renews the broker
// session several times; its SASL requests go in order on the same
// connection, client requests wait meanwhile, and the client sees exactly
// its own responses, in order.
func TestReauthInOrder(t *testing.T) {
	transports(t, func(t *testing.T, tcp bool) {
		var renewed atomic.Int32
		h := startSession(t, tcp, reauthOptions(&renewed), 60*time.Millisecond)
		brokerDone := saslBroker(t, h.broker, func(n int) time.Duration {
			if n < 2 {
				return 60 * time.Millisecond
			}
			return time.Hour
		}, 5*time.Millisecond)

		var sent atomic.Int32
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int32(0); i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := writeAll(h.client, rawFrame(2, 5, 1000+i, []byte("q"))); err != nil {
					t.Errorf("client write: %v", err)
					return
				}
				sent.Add(1)
				time.Sleep(500 * time.Microsecond)
			}
		}()
		deadline := time.Now().Add(ioTimeout)
		received := int32(0)
		for renewed.Load() < 3 && time.Now().Before(deadline) {
			f, err := readFrame(h.client)
			if err != nil || !bytes.Equal(f, rawResponse(1000+received, []byte("answer"))) {
				t.Fatalf("response %d: %x, %v", received, f, err)
			}
			received++
		}
		close(stop)
		wg.Wait()
		for received < sent.Load() {
			f, err := readFrame(h.client)
			if err != nil || !bytes.Equal(f, rawResponse(1000+received, []byte("answer"))) {
				t.Fatalf("response %d: %x, %v", received, f, err)
			}
			received++
		}
		if got := renewed.Load(); got != 3 {
			t.Fatalf("%d renewals, want 3 (two 60ms lifetimes, then an hour)", got)
		}
		if received < 10 {
			t.Fatalf("only %d client requests during the renewals", received)
		}
		h.clientLeaves(tcp)
		if err := h.wait(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if n := <-brokerDone; n != 3 {
			t.Fatalf("broker saw %d authentications", n)
		}
	})
}

// A failed renewal drains the session: the response the client is owed
// still arrives, then Run returns the failure.
func TestReauthFailure(t *testing.T) {
	var renewed atomic.Int32
	h := startSession(t, false, reauthOptions(&renewed), 40*time.Millisecond)
	go func() { _ = writeAll(h.client, rawFrame(2, 5, 7, []byte("slow"))) }()
	if _, err := readFrame(h.broker); err != nil {
		t.Fatal(err)
	}
	// The renewal's handshake queues behind the client's request.
	f, err := readFrame(h.broker)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseRequest(f)
	if err != nil || p.Key != 17 {
		t.Fatalf("expected SaslHandshake, got key %d (%v)", p.Key, err)
	}
	resp := p.req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	go func() {
		_ = writeAll(h.broker, rawResponse(7, []byte("owed")))
		_ = writeAll(h.broker, responseFrame(resp, p.CorrelationID))
	}()
	if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, rawResponse(7, []byte("owed"))) {
		t.Fatalf("owed response: %x, %v", f, err)
	}
	err = h.wait()
	if err == nil || !strings.Contains(err.Error(), "re-authentication failed") || !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Fatalf("Run = %v, want the re-authentication failure", err)
	}
	expectEOF(t, h.client, "client (the proxy's own responses)")
}

// A broker session shorter than MinSessionLifetime is still renewed
// before it expires, every time, and the client is served throughout: the
// floor never closes a connection (it once closed every connection of a
// broker with 3-second sessions under the 5-second default).
func TestLifetimeBelowMinimum(t *testing.T) {
	var renewed atomic.Int32
	opts := reauthOptions(&renewed)
	opts.MinSessionLifetime = time.Second
	h := startSession(t, false, opts, 40*time.Millisecond)
	brokerDone := saslBroker(t, h.broker, func(int) time.Duration { return 40 * time.Millisecond }, 0)
	deadline := time.Now().Add(ioTimeout)
	for i := int32(0); renewed.Load() < 4 && time.Now().Before(deadline); i++ {
		if err := writeAll(h.client, rawFrame(2, 5, i, nil)); err != nil {
			t.Fatal(err)
		}
		if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, rawResponse(i, []byte("answer"))) {
			t.Fatalf("response %d: %x, %v", i, f, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if renewed.Load() < 4 {
		t.Fatalf("%d renewals of a 40ms session in %v", renewed.Load(), ioTimeout)
	}
	_ = h.client.Close()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v, want an orderly end", err)
	}
	_ = h.broker.Close()
	<-brokerDone
}

// renewalDelay renews at 85–95% of the lifetime, no sooner than the floor
// unless the session would lapse: then no later than 90%.
func TestRenewalDelay(t *testing.T) {
	for _, c := range []struct {
		lifetime, floor time.Duration
		jitter          float64
		want            time.Duration
	}{
		{time.Hour, 5 * time.Second, 0, 51 * time.Minute},
		{time.Hour, 5 * time.Second, 0.5, 54 * time.Minute},
		{10 * time.Second, 5 * time.Second, 0, 8500 * time.Millisecond},
		{5800 * time.Millisecond, 5 * time.Second, 0, 5 * time.Second},    // 85% is 4.93s: the floor, still before 90%
		{3 * time.Second, 5 * time.Second, 0, 2700 * time.Millisecond},    // below the floor: 90%
		{3 * time.Second, 5 * time.Second, 0.99, 2847 * time.Millisecond}, // the jitter is already past 90%
		{100 * time.Millisecond, 0, 0, 85 * time.Millisecond},
	} {
		got := renewalDelay(c.lifetime, c.floor, c.jitter)
		if got != c.want || got >= c.lifetime {
			t.Errorf("renewalDelay(%v, floor %v, jitter %v) = %v, want %v", c.lifetime, c.floor, c.jitter, got, c.want)
		}
	}
}

// The client hangs up while a renewal waits for the broker: the renewal
// gives up quietly and Run reports an orderly end, not a SASL failure.
func TestClientLeavesDuringReauth(t *testing.T) {
	var renewed atomic.Int32
	h := startSession(t, true, reauthOptions(&renewed), 30*time.Millisecond)
	f, err := readFrame(h.broker)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseRequest(f)
	if err != nil || p.Key != 17 {
		t.Fatalf("expected SaslHandshake, got key %d (%v)", p.Key, err)
	}
	_ = h.client.Close()
	time.Sleep(20 * time.Millisecond)
	resp := p.req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if err := writeAll(h.broker, responseFrame(resp, p.CorrelationID)); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, h.broker, "broker")
	_ = h.broker.Close()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v after the client left", err)
	}
}

// A renewal stuck in a slow credential provider is cancelled when the
// client leaves: the session ends promptly and cleanly rather than after
// the renewal's timeout.
func TestClientLeavesDuringSlowRenewal(t *testing.T) {
	opts := testOptions()
	opts.MinSessionLifetime = time.Millisecond
	started := make(chan struct{})
	opts.Reauthenticate = func(ctx context.Context, _ upstream.RoundTripper) (time.Duration, error) {
		close(started)
		<-ctx.Done()
		time.Sleep(30 * time.Millisecond) // cleanup after the cancel
		return 0, fmt.Errorf("token provider: %w", ctx.Err())
	}
	h := startSession(t, true, opts, 20*time.Millisecond)
	<-started
	start := time.Now()
	h.clientLeaves(true)
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Run took %v after the client left", d)
	}
}

// Once Run has returned, no renewal runs: the timer is stopped.
func TestNoRenewalAfterRun(t *testing.T) {
	var calls atomic.Int32
	opts := testOptions()
	opts.MinSessionLifetime = time.Millisecond
	opts.Reauthenticate = func(context.Context, upstream.RoundTripper) (time.Duration, error) {
		calls.Add(1)
		return time.Hour, nil
	}
	h := startSession(t, false, opts, 60*time.Millisecond)
	h.clientLeaves(false)
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d renewals after Run returned", n)
	}
}

// The session's clock runs from the upstream authentication, not from
// when the proxy session starts: a connection authenticated 300 ms before
// Run, with a 400 ms session, is renewed within the time it has left.
func TestReauthFromAuthenticationTime(t *testing.T) {
	var renewed atomic.Int32
	opts := reauthOptions(&renewed)
	client, proxyClient := connPair(t, false)
	proxyUp, broker := connPair(t, false)
	up := &upstream.Conn{Conn: proxyUp, SessionLifetime: 400 * time.Millisecond, AuthenticatedAt: time.Now().Add(-300 * time.Millisecond)}
	sess := New(testPeer(proxyClient), up, opts, discardLog(), &nopMetrics{})
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- sess.Run() }()
	brokerDone := saslBroker(t, broker, func(int) time.Duration { return time.Hour }, 0)
	for renewed.Load() == 0 && time.Since(start) < ioTimeout {
		time.Sleep(2 * time.Millisecond)
	}
	if took := time.Since(start); renewed.Load() == 0 || took > 250*time.Millisecond {
		t.Errorf("first renewal after %v, want within the 40-80 ms the session had left (340 ms or more would mean the clock started at Run)", took)
	}
	_ = client.Close()
	<-done
	_ = broker.Close()
	<-brokerDone
}
