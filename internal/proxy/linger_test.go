package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

// lingerSession is a TCP session whose responders linger for d.
func lingerSession(t *testing.T, d time.Duration) *harness {
	opts := watchedOptions(t)
	opts.ResponderLinger = d
	return startSession(t, true, opts, 0)
}

// makeBusy sends two requests close together (the queue empties twice
// within the linger) and waits for the responder to linger.
func makeBusy(t *testing.T, h *harness) {
	t.Helper()
	exchange(t, h, 1)
	time.Sleep(20 * time.Millisecond) // the first responder has stopped
	exchange(t, h, 2)
	if !responderState(h, true, true, time.Second) {
		t.Fatal("the responder of a busy session does not linger")
	}
}

// responderState polls until the responder is in the wanted state, or d
// passes.
func responderState(h *harness, responding, lingering bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		r, l := h.sess.queue.lingerState()
		if r == responding && l == lingering {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// A session's first request, or one after a quiet spell, does not make the
// responder linger (an idle connection holds no goroutine but the request
// pump's); requests that follow each other closely do, and the responder
// stops once the linger passes without one.
func TestResponderLingersOnlyWhileBusy(t *testing.T) {
	const linger = 300 * time.Millisecond
	h := lingerSession(t, linger)
	exchange(t, h, 1)
	if !responderState(h, false, false, time.Second) {
		t.Fatal("the responder of a first request did not stop")
	}
	time.Sleep(linger + 100*time.Millisecond)
	exchange(t, h, 2) // after a quiet spell: not busy
	if !responderState(h, false, false, time.Second) {
		t.Fatal("the responder of a request after a quiet spell did not stop")
	}
	time.Sleep(20 * time.Millisecond)
	exchange(t, h, 3) // soon after the last one: busy
	if !responderState(h, true, true, time.Second) {
		t.Fatal("the responder of a busy session does not linger")
	}
	exchange(t, h, 4) // answered by the lingering responder
	start := time.Now()
	if !responderState(h, false, false, 5*time.Second) {
		t.Fatal("a lingering responder never stopped")
	}
	if took := time.Since(start); took < linger/2 {
		t.Fatalf("the responder stopped after %v, before its %v linger", took, linger)
	}
}

// A client that hangs up while the responder lingers ends the session
// without waiting out the linger: Run wakes the lingering responder (then
// gives the broker, which here keeps its end open, 2 s to close).
func TestLingerEndsWithTheClient(t *testing.T) {
	const linger = 10 * time.Second
	h := lingerSession(t, linger)
	makeBusy(t, h)
	start := time.Now()
	_ = h.client.Close()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v after the client left", err)
	}
	if took := time.Since(start); took > linger/2 {
		t.Fatalf("the session took %v to end with a lingering responder", took)
	}
}

// A broker that hangs up while the responder lingers is noticed at once,
// as the broker watch notices it on an idle session.
func TestLingerSeesTheBrokerLeave(t *testing.T) {
	h := lingerSession(t, 5*time.Second)
	makeBusy(t, h)
	start := time.Now()
	_ = h.broker.Close()
	if err := h.wait(); !errors.Is(err, ErrBrokerClosed) {
		t.Fatalf("Run = %v, want ErrBrokerClosed", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the broker's close took %v to end the session", took)
	}
}

// tlsLingerSession is lingerSession with TLS between the proxy and the
// broker, where the socket's readiness says nothing about what the TLS
// layer holds: the responder lingers by reading.
func tlsLingerSession(t *testing.T, d time.Duration) *harness {
	t.Helper()
	ca, err := certs.NewRoot("linger CA", certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer("broker", []string{"127.0.0.1"}, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	opts := watchedOptions(t)
	opts.ResponderLinger = d
	before := goleak.IgnoreCurrent()
	client, proxyClient := connPair(t, true)
	rawUp, rawBroker := connPair(t, true)
	up := tls.Client(rawUp, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	broker := tls.Server(rawBroker, &tls.Config{Certificates: []tls.Certificate{srv.TLSCertificate()}, MinVersion: tls.VersionTLS12})
	handshake := make(chan error, 1)
	go func() { handshake <- broker.Handshake() }()
	if err := up.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-handshake; err != nil {
		t.Fatal(err)
	}
	return runSession(t, before, client, proxyClient, up, broker, opts, 0)
}

// Over TLS a busy session's responder lingers too, answers the next
// request, and once the linger passes stops and pools its buffer; a
// client leaving meanwhile wakes it, and a broker leaving meanwhile ends
// the session as on an idle one.
func TestLingerOverTLS(t *testing.T) {
	const linger = 300 * time.Millisecond
	h := tlsLingerSession(t, linger)
	makeBusy(t, h)
	exchange(t, h, 3) // answered by the lingering responder
	if !responderState(h, false, false, 5*time.Second) {
		t.Fatal("a lingering responder never stopped")
	}
	h.sess.queue.mu.Lock()
	held := h.sess.upR != nil
	h.sess.queue.mu.Unlock()
	if held {
		t.Fatal("the responder stopped but kept its response buffer")
	}

	h = tlsLingerSession(t, 10*time.Second)
	makeBusy(t, h)
	start := time.Now()
	_ = h.client.Close()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v after the client left", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the session took %v to end with a lingering responder", took)
	}

	h = tlsLingerSession(t, 10*time.Second)
	makeBusy(t, h)
	start = time.Now()
	_ = h.broker.Close()
	if err := h.wait(); !errors.Is(err, ErrBrokerClosed) {
		t.Fatalf("Run = %v after the broker left during a linger, want ErrBrokerClosed", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the broker's close took %v to end the session", took)
	}
}
