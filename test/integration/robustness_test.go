package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

// TestUnknownKeyPassesThrough: an API key the proxy does not know is
// forwarded and its answer relayed byte for byte. (Malformed frames are
// test/robustness's TestMalformedFrames.)
func TestUnknownKeyPassesThrough(t *testing.T) {
	fb := startFakeBroker(t, func(key, version int16, corr int32, body []byte) [][]byte {
		resp := binary.BigEndian.AppendUint32(nil, uint32(corr))
		return [][]byte{append(resp, fmt.Sprintf("answer to key %d v%d", key, version)...)}
	})
	p := kafkatest.StartProxy(t, []string{fb.addr()}, nil)
	c, err := net.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := binary.BigEndian.AppendUint16(nil, 4242)
	req = binary.BigEndian.AppendUint16(req, 7)
	req = binary.BigEndian.AppendUint32(req, 99)
	req = append(req, 0xff, 0xff, 'x', 'y')
	if _, err := c.Write(withSize(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := readFrame(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(frame)); corr != 99 || string(frame[4:]) != "answer to key 4242 v7" {
		t.Errorf("got corr %d body %q", corr, frame[4:])
	}
}

// TestCorrelationMismatchCloses: a broker answering with the wrong
// correlation id gets the connection closed, never relayed.
func TestCorrelationMismatchCloses(t *testing.T) {
	fb := startFakeBroker(t, func(key, version int16, corr int32, body []byte) [][]byte {
		resp := kmsg.NewApiVersionsResponse()
		resp.Version = version
		return [][]byte{responseBody(&resp, corr+1)}
	})
	p := kafkatest.StartProxy(t, []string{fb.addr()}, nil)
	c, err := net.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "t", "1"
	_, _ = c.Write(requestFrame(&req, 7))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("proxy relayed %d bytes of a mismatched response", n)
	}
	if !p.Logs.WaitFor(5*time.Second, "correlation id 8", "oldest request in flight is 7") {
		t.Errorf("mismatch not logged:\n%s", p.Logs.String())
	}
}

// TestApiVersionsClamp: a broker advertising versions newer than kmsg
// knows is clamped for rewritten keys; an ApiVersions request newer than
// the proxy knows is answered v0 UNSUPPORTED_VERSION, as Kafka does.
func TestApiVersionsClamp(t *testing.T) {
	fb := startFakeBroker(t, func(key, version int16, corr int32, body []byte) [][]byte {
		resp := kmsg.NewApiVersionsResponse()
		resp.Version = version
		for k := int16(0); k < 100; k++ {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: 0, MaxVersion: 99})
		}
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: 9999, MinVersion: 0, MaxVersion: 99})
		return [][]byte{responseBody(&resp, corr)}
	})
	p := kafkatest.StartProxy(t, []string{fb.addr()}, nil)
	c, err := net.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for v := int16(0); v <= (&kmsg.ApiVersionsRequest{}).MaxVersion(); v++ {
		req := kmsg.NewApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "t", "1"
		_, _ = c.Write(requestFrame(&req, int32(v)))
		resp := kmsg.NewApiVersionsResponse()
		if corr := readResponse(t, r, &resp, v); corr != int32(v) {
			t.Fatalf("v%d: corr %d", v, corr)
		}
		for _, k := range resp.ApiKeys {
			// Every key kmsg knows is clamped to what the proxy can
			// parse; a key it does not know passes untouched.
			kr := kmsg.ResponseForKey(k.ApiKey)
			switch {
			case kr != nil && k.MaxVersion != kr.MaxVersion():
				t.Errorf("v%d: key %d max %d, want clamp to %d", v, k.ApiKey, k.MaxVersion, kr.MaxVersion())
			case kr == nil && k.MaxVersion != 99:
				t.Errorf("v%d: unknown key %d max %d, want 99 untouched", v, k.ApiKey, k.MaxVersion)
			}
		}
	}
	// A version newer than the proxy knows.
	req := kmsg.NewApiVersionsRequest()
	req.Version = 0
	frame := requestFrame(&req, 1000)
	binary.BigEndian.PutUint16(frame[6:], 99)
	_, _ = c.Write(frame)
	resp := kmsg.NewApiVersionsResponse()
	if corr := readResponse(t, r, &resp, 0); corr != 1000 {
		t.Fatalf("corr %d", corr)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 {
		t.Errorf("got %+v, want UNSUPPORTED_VERSION naming key 18", resp)
	}
}

// TestMaxOpenRequestsBackpressure: with max open requests 2, a broker
// that withholds answers receives exactly 2 requests before the proxy
// stops forwarding; answering them lets the next 2 through, in order.
func TestMaxOpenRequestsBackpressure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	batches := make(chan int, 100)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		frames := make(chan []byte, 100)
		go func() {
			for {
				f, err := readFrame(c)
				if err != nil {
					close(frames)
					return
				}
				frames <- f
			}
		}()
		for {
			// Collect until nothing new arrives for 200ms, then answer.
			var got [][]byte
			f, ok := <-frames
			if !ok {
				return
			}
			got = append(got, f)
		collect:
			for {
				select {
				case f, ok := <-frames:
					if !ok {
						break collect
					}
					got = append(got, f)
				case <-time.After(200 * time.Millisecond):
					break collect
				}
			}
			batches <- len(got)
			for _, f := range got {
				_, _ = c.Write(withSize(f[4:8])) // correlation id only
			}
		}
	}()
	p := kafkatest.StartProxy(t, []string{ln.Addr().String()}, func(c *config.Config) { c.Kafka.MaxOpenRequests = 2 })
	c, err := net.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 6
	go func() {
		for i := 0; i < n; i++ {
			req := binary.BigEndian.AppendUint16(nil, 4242)
			req = binary.BigEndian.AppendUint16(req, 0)
			req = binary.BigEndian.AppendUint32(req, uint32(i))
			req = append(req, 0xff, 0xff)
			_, _ = c.Write(withSize(req))
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		frame, err := readFrame(r)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if corr := int32(binary.BigEndian.Uint32(frame)); corr != int32(i) {
			t.Fatalf("response %d has corr %d: out of order", i, corr)
		}
	}
	for sum := 0; sum < n; {
		select {
		case b := <-batches:
			if b != 2 {
				t.Errorf("broker received %d requests before answering, want exactly 2 (max open requests)", b)
			}
			sum += b
		case <-time.After(5 * time.Second):
			t.Fatalf("broker saw only %d requests", sum)
		}
	}
}

// TestGracefulShutdown: a request in flight when shutdown starts still
// gets its answer; new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	fb := startFakeBroker(t, func(key, version int16, corr int32, body []byte) [][]byte {
		time.Sleep(300 * time.Millisecond)
		return [][]byte{binary.BigEndian.AppendUint32(nil, uint32(corr))}
	})
	p := kafkatest.StartProxy(t, []string{fb.addr()}, nil)
	c, err := net.Dial("tcp", p.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := binary.BigEndian.AppendUint16(nil, 4242)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint32(req, 5)
	req = append(req, 0xff, 0xff)
	_, _ = c.Write(withSize(req))
	time.Sleep(50 * time.Millisecond) // the request is in flight
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- p.Server.Shutdown(ctx)
	}()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := readFrame(c)
	if err != nil {
		t.Fatalf("in-flight response lost at shutdown: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(frame)); corr != 5 {
		t.Errorf("corr %d", corr)
	}
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("after drain: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Bootstrap, time.Second); err == nil {
		t.Errorf("listener still accepts after shutdown")
	}
}
