package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseRequestHeader(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("client"))
	for _, c := range []struct {
		req  kmsg.Request
		v    int16
		corr int32
	}{
		{kmsg.NewPtrProduceRequest(), 9, 1},
		{kmsg.NewPtrMetadataRequest(), 0, math.MaxInt32},
		{kmsg.NewPtrApiVersionsRequest(), 3, -1},
		{kmsg.NewPtrSASLAuthenticateRequest(), 2, math.MinInt32},
	} {
		c.req.SetVersion(c.v)
		frame := f.AppendRequest(nil, c.req, c.corr)
		got := ParseRequestHeader(frame[4:])
		want := RequestHeader{Key: c.req.Key(), Version: c.v, CorrelationID: c.corr}
		if got != want {
			t.Errorf("ParseRequestHeader(%x) = %+v, want %+v", frame[4:12], got, want)
		}
	}
	// Fields are signed: a negative key or version comes back negative.
	b := []byte{0xff, 0xff, 0x80, 0x00, 0, 0, 0, 7}
	if got := ParseRequestHeader(b); got != (RequestHeader{Key: -1, Version: math.MinInt16, CorrelationID: 7}) {
		t.Errorf("ParseRequestHeader(%x) = %+v", b, got)
	}
}

// The table must agree with kmsg, the codec the rewriters decode with, on
// every key and version it knows.
func TestFlexibleMatchesKmsg(t *testing.T) {
	known := 0
	for key := int16(0); key < 2000; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			if _, err := RequestFlexible(key, 0); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("key %d unknown to kmsg: RequestFlexible error = %v", key, err)
			}
			if _, ok := MaxVersion(key); ok {
				t.Errorf("key %d unknown to kmsg has a MaxVersion", key)
			}
			continue
		}
		known++
		resp := kmsg.ResponseForKey(key)
		if max, ok := MaxVersion(key); !ok || max != req.MaxVersion() {
			t.Errorf("MaxVersion(%d) = %d, %v; kmsg %d", key, max, ok, req.MaxVersion())
		}
		var lastReq, lastResp bool
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			resp.SetVersion(v)
			lastReq, lastResp = req.IsFlexible(), resp.IsFlexible() && key != 18
			if got, err := RequestFlexible(key, v); err != nil || got != lastReq {
				t.Errorf("RequestFlexible(%d, %d) = %v, %v; kmsg %v", key, v, got, err, lastReq)
			}
			if got, err := ResponseFlexible(key, v); err != nil || got != lastResp {
				t.Errorf("ResponseFlexible(%d, %d) = %v, %v; want %v", key, v, got, err, lastResp)
			}
		}
		// Newer versions than kmsg knows keep the newest known shape.
		for _, v := range []int16{req.MaxVersion() + 1, req.MaxVersion() + 7, math.MaxInt16} {
			if got, _ := RequestFlexible(key, v); got != lastReq {
				t.Errorf("RequestFlexible(%d, %d) = %v beyond kmsg max, want %v", key, v, got, lastReq)
			}
			if got, _ := ResponseFlexible(key, v); got != lastResp {
				t.Errorf("ResponseFlexible(%d, %d) = %v beyond kmsg max, want %v", key, v, got, lastResp)
			}
		}
	}
	if known < 60 {
		t.Fatalf("only %d keys known to kmsg: table not exercised", known)
	}
}

// ApiVersions responses keep header v0 at every version, so a client can
// read one before it knows what the broker speaks; its requests do not.
func TestApiVersionsResponseNeverFlexible(t *testing.T) {
	for v := int16(-1); v < 100; v++ {
		if got, err := ResponseFlexible(18, v); got || err != nil {
			t.Fatalf("ResponseFlexible(18, %d) = %v, %v", v, got, err)
		}
	}
	if got, _ := RequestFlexible(18, 3); !got {
		t.Fatal("ApiVersions v3 request header must be flexible")
	}
}

func TestUnknownKeys(t *testing.T) {
	for _, key := range []int16{-1, math.MinInt16, 999, 1000, math.MaxInt16} {
		if _, err := RequestFlexible(key, 0); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("RequestFlexible(%d) error = %v", key, err)
		}
		if _, err := ResponseFlexible(key, 0); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("ResponseFlexible(%d) error = %v", key, err)
		}
		if _, ok := MaxVersion(key); ok {
			t.Errorf("MaxVersion(%d) ok", key)
		}
	}
}

// The lookups run per request and response: they must not allocate (kmsg's
// RequestForKey does).
func TestLookupsDoNotAllocate(t *testing.T) {
	a := testing.AllocsPerRun(100, func() {
		_ = ParseRequestHeader([]byte{0, 3, 0, 12, 0, 0, 0, 1})
		_, _ = RequestFlexible(3, 12)
		_, _ = ResponseFlexible(3, 12)
		_, _ = MaxVersion(3)
	})
	if a != 0 {
		t.Fatalf("%v allocations per lookup", a)
	}
}

// FuzzRequestHeader parses arbitrary header bytes and looks the key and
// version up, as the request pump does; it must not panic, and known keys
// must agree with kmsg.
func FuzzRequestHeader(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c"))
	for _, req := range []kmsg.Request{kmsg.NewPtrProduceRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrApiVersionsRequest()} {
		req.SetVersion(req.MaxVersion())
		f.Add(fm.AppendRequest(nil, req, 5)[4:])
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		h := ParseRequestHeader(b)
		if h.Key != int16(binary.BigEndian.Uint16(b)) || h.CorrelationID != int32(binary.BigEndian.Uint32(b[4:])) {
			t.Fatalf("ParseRequestHeader(%x) = %+v", b[:8], h)
		}
		reqFlex, reqErr := RequestFlexible(h.Key, h.Version)
		respFlex, respErr := ResponseFlexible(h.Key, h.Version)
		max, ok := MaxVersion(h.Key)
		req := kmsg.RequestForKey(h.Key)
		if h.Key < 0 {
			req = nil
		}
		if (req != nil) != ok || (req == nil) != errors.Is(reqErr, ErrUnknownKey) {
			t.Fatalf("key %d: kmsg knows it = %v, MaxVersion ok = %v, err = %v", h.Key, req != nil, ok, reqErr)
		}
		if h.Key == 18 && (respFlex || respErr != nil) {
			t.Fatalf("ApiVersions response flexible = %v, %v", respFlex, respErr)
		}
		if req == nil || h.Version < 0 || h.Version > max {
			return
		}
		req.SetVersion(h.Version)
		if reqFlex != req.IsFlexible() {
			t.Fatalf("RequestFlexible(%d, %d) = %v, kmsg %v", h.Key, h.Version, reqFlex, req.IsFlexible())
		}
		if h.Key != 18 && respFlex != reqFlex {
			t.Fatalf("ResponseFlexible(%d, %d) = %v, request %v", h.Key, h.Version, respFlex, reqFlex)
		}
	})
}
