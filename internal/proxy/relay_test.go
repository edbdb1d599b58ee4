package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/policy"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

func transports(t *testing.T, f func(t *testing.T, tcp bool)) {
	t.Run("pipe", func(t *testing.T) { f(t, false) })
	t.Run("tcp", func(t *testing.T) { f(t, true) })
}

// Pipelined requests reach the broker byte for byte and in order, and each
// response reaches the client in the same order, byte for byte.
func TestRelayPipelined(t *testing.T) {
	transports(t, func(t *testing.T, tcp bool) {
		opts := testOptions()
		opts.MaxOpenRequests = 4
		h := startSession(t, tcp, opts, 0)
		const n = 40
		maxV := kmsg.NewPtrListOffsetsRequest().MaxVersion()
		var reqs, resps [][]byte
		for i := range n {
			v := int16(i) % (maxV + 1)
			topic := fmt.Sprintf("topic-%d", i)
			id := fmt.Sprintf("client-%d", i)
			reqs = append(reqs, requestFrame(listOffsets(v, topic), int32(1000+7*i), &id))
			resps = append(resps, responseFrame(listOffsetsResponse(v, topic), int32(1000+7*i)))
		}
		go func() {
			for _, r := range reqs {
				if err := writeAll(h.client, r); err != nil {
					t.Errorf("client write: %v", err)
					return
				}
			}
		}()
		brokerDone := make(chan struct{})
		go func() {
			defer close(brokerDone)
			// Read three before answering, so requests really overlap.
			for i := 0; i < n; i += 3 {
				end := min(i+3, n)
				for j := i; j < end; j++ {
					f, err := readFrame(h.broker)
					if err != nil || !bytes.Equal(f, reqs[j]) {
						t.Errorf("broker: request %d = %x, %v; want %x", j, f, err, reqs[j])
						return
					}
				}
				for j := i; j < end; j++ {
					if err := writeAll(h.broker, resps[j]); err != nil {
						t.Errorf("broker write: %v", err)
						return
					}
				}
			}
		}()
		for i := range n {
			f, err := readFrame(h.client)
			if err != nil || !bytes.Equal(f, resps[i]) {
				t.Fatalf("client: response %d = %x, %v; want %x", i, f, err, resps[i])
			}
		}
		<-brokerDone
		h.clientLeaves(tcp)
		if err := h.wait(); err != nil {
			t.Fatalf("Run = %v after the client left", err)
		}
	})
}

// No more than MaxOpenRequests requests are in flight: the next one stays
// with the client until a response frees a slot.
func TestRelayBackpressure(t *testing.T) {
	opts := testOptions()
	opts.MaxOpenRequests = 2
	h := startSession(t, true, opts, 0)
	for i := range 3 {
		if err := writeAll(h.client, rawFrame(2, 5, int32(i), []byte("body"))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := readFrame(h.broker); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_ = h.broker.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := h.broker.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a third request reached the broker with two in flight (max 2): n=%d err=%v", n, err)
	}
	if err := writeAll(h.broker, rawResponse(0, []byte("r0"))); err != nil {
		t.Fatal(err)
	}
	if f, err := readFrame(h.broker); err != nil || wire.ParseRequestHeader(f[4:]).CorrelationID != 2 {
		t.Fatalf("third request after a response: %x, %v", f, err)
	}
}

// Frames larger than the bufio buffers stream through byte for byte, in
// both directions: on TCP through splice, on a pipe through the copy
// buffer.
func TestRelayLargeFrames(t *testing.T) {
	transports(t, func(t *testing.T, tcp bool) {
		opts := testOptions()
		opts.RequestBufferSize, opts.ResponseBufferSize = 256, 256
		h := startSession(t, tcp, opts, 0)
		var reqBytes, respBytes int
		for i, size := range []int{300, 70 << 10, 1<<20 + 3} {
			body := make([]byte, size)
			for j := range body {
				body[j] = byte(rand.Uint32())
			}
			req := rawFrame(2, 4, int32(i), body)
			resp := rawResponse(int32(i), body[:size-1])
			go func() { _ = writeAll(h.client, req) }()
			if f, err := readFrame(h.broker); err != nil || !bytes.Equal(f, req) {
				t.Fatalf("%d-byte request arrived as %d bytes (%v)", len(req), len(f), err)
			}
			go func() { _ = writeAll(h.broker, resp) }()
			if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, resp) {
				t.Fatalf("%d-byte response arrived as %d bytes (%v)", len(resp), len(f), err)
			}
			reqBytes += len(req)
			respBytes += len(resp)
		}
		// Metrics count whole frames, size prefix included; the last is
		// counted after its write, so look once the session is over.
		h.clientLeaves(tcp)
		if err := h.wait(); err != nil {
			t.Fatal(err)
		}
		if n, nb, m, mb := h.metrics.snapshot(); n != 3 || nb != reqBytes || m != 3 || mb != respBytes {
			t.Fatalf("metrics: %d requests (%d bytes), %d responses (%d bytes); want 3 (%d), 3 (%d)", n, nb, m, mb, reqBytes, respBytes)
		}
	})
}

// A request for a forbidden key closes the connection with the reason;
// nothing reaches the broker.
func TestForbiddenKey(t *testing.T) {
	opts := testOptions()
	opts.Stages = testStages(policy.ForbiddenKeys([]int{2, 18}))
	h := startSession(t, false, opts, 0)
	// ListOffsets: answered with the broker's authorization error for
	// its topic; nothing reaches the broker and the session goes on.
	go func() { _ = writeAll(h.client, requestFrame(listOffsets(3, "t"), 1, nil)) }()
	frame, err := readFrame(h.client)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := pipeline.DecodeResponseFrame(kmsg.ListOffsets.Int16(), 3, frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	lo := resp.(*kmsg.ListOffsetsResponse)
	if len(lo.Topics) != 1 || lo.Topics[0].Topic != "t" || lo.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("forbidden ListOffsets answered %+v", lo.Topics)
	}
	// ApiVersions has no room for an authorization error: closed.
	go func() { _ = writeAll(h.client, requestFrame(kmsg.NewPtrApiVersionsRequest(), 2, nil)) }()
	err = h.wait()
	if err == nil || !strings.Contains(err.Error(), "forbidden api key 18 (ApiVersions)") {
		t.Fatalf("Run = %v, want forbidden ApiVersions", err)
	}
	expectEOF(t, h.broker, "broker")
	expectEOF(t, h.client, "client")
}

// A response whose correlation id is not the oldest in flight closes the
// connection; the client never gets another request's answer.
func TestCorrelationMismatch(t *testing.T) {
	h := startSession(t, true, testOptions(), 0)
	if err := writeAll(h.client, rawFrame(2, 5, 7, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrame(h.broker); err != nil {
		t.Fatal(err)
	}
	if err := writeAll(h.broker, rawResponse(8, []byte("wrong"))); err != nil {
		t.Fatal(err)
	}
	err := h.wait()
	if err == nil || !strings.Contains(err.Error(), "correlation id 8") {
		t.Fatalf("Run = %v, want a correlation mismatch", err)
	}
	expectEOF(t, h.client, "client")
}

// A size prefix above the limit, negative or too small closes the
// connection before anything is allocated for the frame.
func TestBadRequestSizes(t *testing.T) {
	for _, c := range []struct {
		size uint32
		want error
	}{
		{1 << 30, wire.ErrFrameTooLarge},
		{0xfffffff0, wire.ErrNegativeSize},
		{4, wire.ErrFrameTooSmall},
	} {
		t.Run(fmt.Sprint(int32(c.size)), func(t *testing.T) {
			opts := testOptions()
			opts.MaxFrameSize = 1 << 20
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			h := startSession(t, false, opts, 0)
			b := []byte{byte(c.size >> 24), byte(c.size >> 16), byte(c.size >> 8), byte(c.size), 0, 2, 0, 1, 0, 0, 0, 1}
			go func() { _ = writeAll(h.client, b) }()
			err := h.wait()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, c.want) {
				t.Fatalf("Run = %v, want %v", err, c.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
				t.Fatalf("%d bytes allocated for a rejected frame", grew)
			}
			expectEOF(t, h.broker, "broker")
		})
	}
}

// An oversize response closes the connection before it is read.
func TestOversizeResponse(t *testing.T) {
	opts := testOptions()
	opts.MaxFrameSize = 1 << 20
	h := startSession(t, false, opts, 0)
	go func() { _ = writeAll(h.client, rawFrame(2, 5, 1, nil)) }()
	if _, err := readFrame(h.broker); err != nil {
		t.Fatal(err)
	}
	go func() { _ = writeAll(h.broker, []byte{0x40, 0, 0, 0, 0, 0, 0, 1}) }()
	if err := h.wait(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("Run = %v, want ErrFrameTooLarge", err)
	}
	expectEOF(t, h.client, "client")
}

// A client speaking HTTP is told apart from a bad Kafka frame.
func TestForeignClient(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	go func() { _ = writeAll(h.client, []byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) }()
	if err := h.wait(); err == nil || !strings.Contains(err.Error(), "client speaks HTTP") {
		t.Fatalf("Run = %v", err)
	}
	expectEOF(t, h.broker, "broker")
}

// An ApiVersions request newer than kmsg knows is answered by the proxy
// (v0, UNSUPPORTED_VERSION, naming the versions it takes) in its place
// among the client's other responses, and never reaches the broker.
func TestApiVersionsTooNewAnsweredLocally(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	maxV, _ := wire.MaxVersion(18)
	reqs := [][]byte{rawFrame(2, 5, 1, []byte("a")), rawFrame(18, maxV+1, 2, []byte{0, 0, 0}), rawFrame(2, 5, 3, []byte("b"))}
	go func() {
		for _, r := range reqs {
			_ = writeAll(h.client, r)
		}
	}()
	for _, i := range []int{0, 2} {
		f, err := readFrame(h.broker)
		if err != nil || !bytes.Equal(f, reqs[i]) {
			t.Fatalf("broker got %x, %v; want request %d", f, err, i)
		}
		go func() { _ = writeAll(h.broker, rawResponse(int32(i+1), []byte{byte(i)})) }()
		if i == 0 {
			// Answer the first before the proxy's own answer is due.
			f, err := readFrame(h.client)
			if err != nil || !bytes.Equal(f, rawResponse(1, []byte{0})) {
				t.Fatalf("first response %x, %v", f, err)
			}
			f, err = readFrame(h.client)
			if err != nil {
				t.Fatal(err)
			}
			if corr := int32(binary.BigEndian.Uint32(f[4:])); corr != 2 {
				t.Fatalf("local response has correlation id %d", corr)
			}
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.Version = 0
			if err := resp.ReadFrom(f[8:]); err != nil {
				t.Fatal(err)
			}
			if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != maxV {
				t.Fatalf("local ApiVersions response %+v", resp)
			}
		}
	}
	if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, rawResponse(3, []byte{2})) {
		t.Fatalf("last response %x, %v", f, err)
	}
}

// A key the proxy must rewrite, at a version it cannot decode, closes the
// connection rather than let broker addresses through.
func TestRewriteKeyTooNew(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	maxV, _ := wire.MaxVersion(3)
	go func() { _ = writeAll(h.client, rawFrame(3, maxV+1, 1, []byte{0})) }()
	if err := h.wait(); err == nil || !strings.Contains(err.Error(), "newer than this proxy can rewrite") {
		t.Fatalf("Run = %v", err)
	}
	expectEOF(t, h.broker, "broker")
}

// The broker hanging up is an error of the session, also while the
// request pump waits for a free slot in a full FIFO.
func TestBrokerCloses(t *testing.T) {
	for _, inFlight := range []int{1, 2} {
		t.Run(fmt.Sprint(inFlight), func(t *testing.T) {
			opts := testOptions()
			opts.MaxOpenRequests = 1
			h := startSession(t, true, opts, 0)
			for i := range inFlight {
				if err := writeAll(h.client, rawFrame(2, 5, int32(i), nil)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := readFrame(h.broker); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // let the second request wait for its slot
			_ = h.broker.Close()
			err := h.wait()
			if err == nil || !strings.Contains(err.Error(), "read ListOffsets response") {
				t.Fatalf("Run = %v, want the broker's EOF", err)
			}
			expectEOF(t, h.client, "client")
		})
	}
}
