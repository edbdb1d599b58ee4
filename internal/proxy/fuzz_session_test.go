package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

// fuzzMaxFrame is the fuzzed session's frame limit; it also bounds the
// padding added to complete a last frame.
const fuzzMaxFrame = 1 << 16

// completeFrames pads in so that it ends at a frame boundary, as far as
// its size prefixes are valid: a session is only drained between frames,
// and a client that stops inside one would (rightly) hold the drain.
func completeFrames(in []byte) []byte {
	off := 0
	for off+4 <= len(in) {
		n := int32(binary.BigEndian.Uint32(in[off:]))
		if n < 0 || n > fuzzMaxFrame {
			return in // the proxy rejects it; the rest is never read
		}
		off += 4 + int(n)
	}
	if off > len(in) {
		in = append(in, make([]byte, off-len(in))...)
	}
	return in
}

// echoBroker answers every request frame with its correlation id and the
// rest of its bytes as the body, until its connection fails. Like Kafka it
// does not answer an acks=0 Produce: on a synchronous pipe an unexpected
// answer would only stall both sides until a write timeout.
func echoBroker(c net.Conn) {
	var p [4]byte
	for {
		if _, err := io.ReadFull(c, p[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(p[:])
		if n > fuzzMaxFrame || n < 8 {
			return
		}
		b := make([]byte, 4+n)
		if _, err := io.ReadFull(c, b[4:]); err != nil {
			return
		}
		if h := b[4:]; h[0] == 0 && h[1] == 0 {
			if acks, err := wire.ProduceAcks(h, int16(binary.BigEndian.Uint16(h[2:]))); err == nil && acks == 0 {
				continue
			}
		}
		resp := b[4:] // corr at 4..8: the response starts 4 bytes later
		putSize(resp, len(resp)-4)
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// FuzzSession feeds arbitrary client bytes through a session to a broker
// that echoes. The session must never panic, and must end once drained
// (or, if it closed on a bad frame, on its own) within a bound.
func FuzzSession(f *testing.F) {
	id := "fuzz"
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	f.Add(requestFrame(listOffsets(5, "t"), 1, &id))
	f.Add(requestFrame(meta, 2, nil))
	f.Add(append(produceCase{v: 9, acks: 0}.frame(3), requestFrame(listOffsets(1, "x"), 4, nil)...))
	f.Add(rawFrame(18, 99, 5, nil))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		in = completeFrames(in)
		client, proxyClient := net.Pipe()
		proxyUp, broker := net.Pipe()
		opts := testOptions()
		opts.MaxFrameSize, opts.RequestBufferSize, opts.ResponseBufferSize, opts.MaxOpenRequests = fuzzMaxFrame, 64, 64, 4
		opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second
		s := New(testPeer(proxyClient), upConn(proxyUp, 0), opts, discardLog(), nil)
		done := make(chan error, 1)
		go func() { done <- s.Run() }()
		brokerDone := make(chan struct{})
		go func() { echoBroker(broker); close(brokerDone) }()
		readerDone := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, client); close(readerDone) }()

		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(in)
		s.Drain()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			panic(fmt.Sprintf("session did not end after a drain; input %x", in))
		}
		_ = client.Close()
		_ = broker.Close()
		<-brokerDone
		<-readerDone
	})
}
