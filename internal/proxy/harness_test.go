package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/rewrite"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// TestMain fails the run if any goroutine outlives the tests; each
// harness also checks right after its session's Run returned.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ioTimeout bounds every blocking step of a test so that a broken session
// fails the test instead of hanging it.
const ioTimeout = 5 * time.Second

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	return a, b
}

// connPair is a connected pair over loopback TCP or net.Pipe.
func connPair(t testing.TB, tcp bool) (net.Conn, net.Conn) {
	if tcp {
		return loopbackPair(t)
	}
	return net.Pipe()
}

// fakeMapper maps broker n to proxy-n.test:30000+n; host "fail" fails.
type fakeMapper struct{}

func (fakeMapper) MapBroker(node int32, host string, _ int32) (string, int32, error) {
	if host == "fail" {
		return "", 0, errors.New("no listener for broker")
	}
	return fmt.Sprintf("proxy-%d.test", node), 30000 + node, nil
}

func testOptions() Options {
	return Options{
		MaxFrameSize:       4 << 20,
		MaxOpenRequests:    16,
		RequestBufferSize:  4096,
		ResponseBufferSize: 4096,
		ReadTimeout:        ioTimeout,
		WriteTimeout:       ioTimeout,
		Stages:             testStages(),
		Buffers:            wire.NewBufferPool(16 << 10),
	}
}

// testStages is the server's chain with fakeMapper, after extra stages.
func testStages(extra ...pipeline.Stage) *pipeline.Chain {
	c, err := pipeline.NewChain(append(extra, rewrite.Versions(), rewrite.Addresses(fakeMapper{}))...)
	if err != nil {
		panic(err)
	}
	return c
}

// testPeer is an admitted plaintext client on conn.
func testPeer(conn net.Conn) *pipeline.Client { return pipeline.NewClient(conn, "broker:9092") }

// watchedOptions are testOptions with a started broker watch (started
// before the sessions, so their leak checks do not count its goroutine).
func watchedOptions(t testing.TB) Options {
	t.Helper()
	w := NewBrokerWatch()
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	opts := testOptions()
	opts.BrokerWatch = w
	return opts
}

func upConn(c net.Conn, lifetime time.Duration) *upstream.Conn {
	return &upstream.Conn{Conn: c, SessionLifetime: lifetime}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// harness is one Session between a test-driven client end and a scripted
// broker end.
type harness struct {
	t       testing.TB
	sess    *Session
	client  net.Conn // the client's side of the client connection
	broker  net.Conn // the broker's side of the upstream connection
	done    chan error
	metrics countingMetrics
}

// countingMetrics sums what the session reports.
type countingMetrics struct {
	mu                      sync.Mutex
	requests, responses     int
	requestBytes, respBytes int
	lastKey, lastVersion    int16
}

func (m *countingMetrics) Request(key, version int16, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests++
	m.requestBytes += bytes
	m.lastKey, m.lastVersion = key, version
}

func (m *countingMetrics) Answered(int16, time.Duration) {}

func (m *countingMetrics) Response(bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.responses++
	m.respBytes += bytes
}

func (m *countingMetrics) snapshot() (requests, requestBytes, responses, respBytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests, m.requestBytes, m.responses, m.respBytes
}

// startSession runs a Session over two fresh connection pairs. Cleanup
// closes the test's ends, waits for Run and checks for leaked goroutines.
func startSession(t testing.TB, tcp bool, opts Options, lifetime time.Duration) *harness {
	t.Helper()
	before := goleak.IgnoreCurrent()
	client, proxyClient := connPair(t, tcp)
	proxyUp, broker := connPair(t, tcp)
	return runSession(t, before, client, proxyClient, proxyUp, broker, opts, lifetime)
}

// runSession runs a session between the connection pairs (client and the
// proxy's end of it, the proxy's broker end and the broker) until the test
// ends; before is what goroutines ran before the pairs were made.
func runSession(t testing.TB, before goleak.Option, client, proxyClient, proxyUp, broker net.Conn, opts Options, lifetime time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, client: client, broker: broker, done: make(chan error, 1)}
	h.sess = New(testPeer(proxyClient), upConn(proxyUp, lifetime), opts, discardLog(), &h.metrics)
	go func() { h.done <- h.sess.Run() }()
	t.Cleanup(func() {
		_ = client.Close()
		_ = broker.Close()
		select {
		case <-h.done:
		case <-time.After(ioTimeout):
			t.Errorf("Run did not return after both peers closed")
			h.sess.Close()
		}
		if err := goleak.Find(before); err != nil {
			t.Errorf("goroutines left after Run returned: %v", err)
		}
	})
	return h
}

// wait returns Run's result, failing the test if it does not come.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // cleanup reads it again
		return err
	case <-time.After(ioTimeout):
		h.t.Fatal("Run did not return")
		return nil
	}
}

// running reports whether Run has not returned within d.
func (h *harness) running(d time.Duration) bool {
	select {
	case err := <-h.done:
		h.done <- err
		return false
	case <-time.After(d):
		return true
	}
}

// clientLeaves closes the client's end. The broker end, like a broker,
// reads to the end of the stream and closes; on TCP the proxy must pass the
// end of the client's requests on (half-close), so that end must come.
func (h *harness) clientLeaves(tcp bool) {
	h.t.Helper()
	_ = h.client.Close()
	if tcp {
		expectEOF(h.t, h.broker, "broker")
	}
	_ = h.broker.Close()
}

// appendTags appends a tagged-field section holding one field per value,
// numbered from 0 in steps of 3 (ascending, as Kafka requires).
func appendTags(dst []byte, fields ...[]byte) []byte {
	dst = kbin.AppendUvarint(dst, uint32(len(fields)))
	for i, f := range fields {
		dst = kbin.AppendUvarint(dst, uint32(3*i))
		dst = kbin.AppendUvarint(dst, uint32(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// requestFrame encodes req as a client would, with an optional client id
// and, for flexible versions, the given header tagged fields.
func requestFrame(req kmsg.Request, corr int32, clientID *string, tags ...[]byte) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = kbin.AppendNullableString(b, clientID)
	if req.IsFlexible() {
		b = appendTags(b, tags...)
	}
	b = req.AppendTo(b)
	putSize(b, len(b)-4)
	return b
}

// responseFrame encodes resp as a broker would answer request key/version.
func responseFrame(resp kmsg.Response, corr int32, tags ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 4, 64), uint32(corr))
	if flexible, _ := wire.ResponseFlexible(resp.Key(), resp.GetVersion()); flexible {
		b = appendTags(b, tags...)
	}
	b = resp.AppendTo(b)
	putSize(b, len(b)-4)
	return b
}

// rawFrame is a frame with the given header and an opaque body, as the
// proxy sees anything it does not decode.
func rawFrame(key, version int16, corr int32, body []byte) []byte {
	b := make([]byte, 4, 14+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	if flexible, _ := wire.RequestFlexible(key, version); flexible {
		b = append(b, 0)
	}
	b = append(b, body...)
	putSize(b, len(b)-4)
	return b
}

// rawResponse is a response frame with an opaque body.
func rawResponse(corr int32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 4, 8+len(body)), uint32(corr))
	b = append(b, body...)
	putSize(b, len(b)-4)
	return b
}

// readFrame reads one whole frame (size prefix included) within ioTimeout.
func readFrame(c net.Conn) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	defer c.SetReadDeadline(time.Time{})
	var p [4]byte
	if _, err := io.ReadFull(c, p[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(p[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, 4+n)
	copy(b, p[:])
	_, err := io.ReadFull(c, b[4:])
	return b, err
}

// writeAll writes b within ioTimeout.
func writeAll(c net.Conn, b []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := c.Write(b)
	return err
}

// parsedRequest is a request frame as the broker sees it.
type parsedRequest struct {
	wire.RequestHeader
	frame []byte
	req   kmsg.Request // decoded body, nil for keys kmsg does not know
}

// parseRequest decodes a request frame like a broker.
func parseRequest(frame []byte) (parsedRequest, error) {
	p := parsedRequest{RequestHeader: wire.ParseRequestHeader(frame[4:]), frame: frame}
	off := 12
	if n := int16(binary.BigEndian.Uint16(frame[off:])); n > 0 {
		off += int(n)
	}
	off += 2
	p.req = kmsg.RequestForKey(p.Key)
	if p.req == nil {
		return p, nil
	}
	p.req.SetVersion(p.Version)
	if p.req.IsFlexible() {
		var err error
		if off, err = wire.SkipTags(frame, off); err != nil {
			return p, err
		}
	}
	return p, p.req.ReadFrom(frame[off:])
}

// expectEOF reads c to its end and fails if anything arrives.
func expectEOF(t testing.TB, c net.Conn, who string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		t.Errorf("%s received %d unexpected bytes: %x", who, len(b), b[:min(len(b), 32)])
	}
	if err != nil && !errors.Is(err, io.ErrClosedPipe) && !isReset(err) {
		t.Errorf("%s: %v, want EOF", who, err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// listOffsets returns a ListOffsets request at version v, whose response
// the proxy passes through undecoded.
func listOffsets(v int16, topic string) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = v
	req.ReplicaID = -1
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition = 3
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

// listOffsetsResponse is the answer to listOffsets(v, topic).
func listOffsetsResponse(v int16, topic string) *kmsg.ListOffsetsResponse {
	resp := kmsg.NewPtrListOffsetsResponse()
	resp.Version = v
	t := kmsg.NewListOffsetsResponseTopic()
	t.Topic = topic
	p := kmsg.NewListOffsetsResponseTopicPartition()
	p.Partition = 3
	p.Offset = 42
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}
