package proxy

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

func metadataResponse(v int16, hosts ...string) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = v
	for i, host := range hosts {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(i+1), host, 9092
		resp.Brokers = append(resp.Brokers, b)
	}
	topic := kmsg.NewMetadataResponseTopic()
	topic.Topic = kmsg.StringPtr("orders")
	resp.Topics = append(resp.Topics, topic)
	return resp
}

// Metadata responses are decoded and their broker addresses replaced via
// the Mapper, at old and flexible versions; the response header's tagged
// fields survive, the size prefix is recomputed, and the pass-through
// response after it is intact.
func TestMetadataRewritten(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	maxV := kmsg.NewPtrMetadataRequest().MaxVersion()
	for _, v := range []int16{0, 1, 4, 8, 9, 12, maxV} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = v
			corr := int32(100 + v)
			var tags [][]byte
			if v >= 9 {
				tags = [][]byte{[]byte("header-tag"), {}}
			}
			resp := responseFrame(metadataResponse(v, "broker-1.internal", "broker-2.internal"), corr, tags...)
			after := rawResponse(corr+1, []byte("pass-through"))
			go func() {
				_ = writeAll(h.client, requestFrame(req, corr, nil))
				_ = writeAll(h.client, rawFrame(2, 5, corr+1, nil))
			}()
			go func() {
				for range 2 {
					if _, err := readFrame(h.broker); err != nil {
						t.Errorf("broker: %v", err)
						return
					}
				}
				_ = writeAll(h.broker, resp)
				_ = writeAll(h.broker, after)
			}()
			f, err := readFrame(h.client)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f[4:8]); got != string(resp[4:8]) {
				t.Fatalf("correlation id %x, want %x", got, resp[4:8])
			}
			body := f[8:]
			if v >= 9 {
				want := appendTags(nil, tags...)
				if !bytes.HasPrefix(body, want) {
					t.Fatalf("header tags %x, want %x", body[:min(len(body), len(want))], want)
				}
				body = body[len(want):]
			}
			got := kmsg.NewPtrMetadataResponse()
			got.Version = v
			if err := got.ReadFrom(body); err != nil {
				t.Fatalf("decode rewritten response: %v", err)
			}
			if len(got.Brokers) != 2 {
				t.Fatalf("%d brokers", len(got.Brokers))
			}
			for _, b := range got.Brokers {
				if b.Host != fmt.Sprintf("proxy-%d.test", b.NodeID) || b.Port != 30000+b.NodeID {
					t.Errorf("broker %d at %s:%d, not its proxy address", b.NodeID, b.Host, b.Port)
				}
			}
			if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, after) {
				t.Fatalf("response after the rewritten one: %x, %v", f, err)
			}
		})
	}
}

// A broker the Mapper cannot place closes the connection; the client is
// not given the broker's real address.
func TestMetadataRewriteFails(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	go func() { _ = writeAll(h.client, requestFrame(req, 1, nil)) }()
	if _, err := readFrame(h.broker); err != nil {
		t.Fatal(err)
	}
	go func() { _ = writeAll(h.broker, responseFrame(metadataResponse(12, "fail"), 1)) }()
	if err := h.wait(); err == nil || !strings.Contains(err.Error(), "Metadata v12 response: map broker 1 at fail:9092") {
		t.Fatalf("Run = %v", err)
	}
	expectEOF(t, h.client, "client")
}

// Response header tags that claim more bytes than the frame holds close
// the connection (they once sliced past the frame and panicked).
func TestResponseHeaderTagsBeyondFrame(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	go func() { _ = writeAll(h.client, requestFrame(req, 1, nil)) }()
	if _, err := readFrame(h.broker); err != nil {
		t.Fatal(err)
	}
	// One tag, number 0, of 100 bytes, in a frame that ends after two.
	go func() { _ = writeAll(h.broker, rawResponse(1, []byte{1, 0, 100, 'a', 'b'})) }()
	if err := h.wait(); err == nil || !strings.Contains(err.Error(), "Metadata response header") {
		t.Fatalf("Run = %v", err)
	}
	expectEOF(t, h.client, "client")
}

func TestSkipTags(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want int
		ok   bool
	}{
		{[]byte{0}, 1, true},
		{appendTags(nil, []byte("abc"), nil), 8, true},
		{[]byte{1, 0, 3, 'a', 'b', 'c'}, 6, true},
		{[]byte{1, 0, 4, 'a', 'b', 'c'}, 0, false},
		{[]byte{2, 0, 0}, 0, false},
		{[]byte{}, 0, false},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0}, 0, false},
	} {
		got, err := wire.SkipTags(c.b, 0)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("wire.SkipTags(%x) = %d, %v; want %d ok=%v", c.b, got, err, c.want, c.ok)
		}
	}
}
