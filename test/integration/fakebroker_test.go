package integration

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// fakeBroker is a scripted Kafka peer for behaviour kfake cannot produce
// (wrong correlation ids, unknown keys, slow answers). handle gets each
// request frame's header and body and returns the response frames to
// write (each without the size prefix), or nil to answer nothing.
type fakeBroker struct {
	ln     net.Listener
	handle func(key, version int16, corr int32, body []byte) [][]byte
	mu     sync.Mutex
	conns  []net.Conn
}

func startFakeBroker(t *testing.T, handle func(key, version int16, corr int32, body []byte) [][]byte) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{ln: ln, handle: handle}
	go b.serve()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
	})
	return b
}

func (b *fakeBroker) addr() string { return b.ln.Addr().String() }

func (b *fakeBroker) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				frame, err := readFrame(r)
				if err != nil {
					return
				}
				key := int16(binary.BigEndian.Uint16(frame))
				version := int16(binary.BigEndian.Uint16(frame[2:]))
				corr := int32(binary.BigEndian.Uint32(frame[4:]))
				for _, resp := range b.handle(key, version, corr, frame) {
					if _, err := c.Write(withSize(resp)); err != nil {
						return
					}
				}
			}
		}()
	}
}

func readFrame(r io.Reader) ([]byte, error) { return kafkatest.ReadFrame(r) }

func withSize(b []byte) []byte { return kafkatest.WithSize(b) }

// requestFrame encodes req as a full request frame with client id "test".
func requestFrame(req kmsg.Request, corr int32) []byte {
	return kafkatest.RequestFrame(req, corr, "test")
}

// responseBody encodes resp with its header (correlation id and, for
// flexible non-ApiVersions responses, empty tags), without a size prefix.
func responseBody(resp kmsg.Response, corr int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(corr))
	if resp.IsFlexible() && resp.Key() != 18 {
		b = append(b, 0)
	}
	return resp.AppendTo(b)
}

// readResponse reads one response frame from r and decodes it into resp
// at version, returning the correlation id.
func readResponse(t *testing.T, r io.Reader, resp kmsg.Response, version int16) int32 {
	t.Helper()
	frame, err := readFrame(r)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	corr := int32(binary.BigEndian.Uint32(frame))
	body := frame[4:]
	resp.SetVersion(version)
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %T: %v", resp, err)
	}
	return corr
}
