package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

const produceMax = 13 // kmsg's newest Produce version when these tests were written

// produceCase is one shape of Produce request header the acks peek must
// see through.
type produceCase struct {
	v        int16
	acks     int16
	txn      *string
	clientID *string
	tags     [][]byte // header tagged fields, flexible versions only
}

func (c produceCase) String() string {
	return fmt.Sprintf("v%d/acks=%d/txn=%v/client=%v/tags=%d", c.v, c.acks, c.txn != nil, c.clientID != nil, len(c.tags))
}

func (c produceCase) request() *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = c.v, c.acks, 1500, c.txn
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "orders"
	t.TopicID = [16]byte{1, 2, 3}
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition = 1
	p.Records = bytes.Repeat([]byte{0xab}, 100)
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

func (c produceCase) frame(corr int32) []byte {
	return requestFrame(c.request(), corr, c.clientID, c.tags...)
}

// acksEnd is where the acks field ends in the frame body (after the size
// prefix): header, then transactional id (v3+), then acks.
func (c produceCase) acksEnd() int {
	header := len(requestFrame(kmsg.NewPtrSASLHandshakeRequest(), 0, c.clientID)) - 4 - len(kmsg.NewPtrSASLHandshakeRequest().AppendTo(nil))
	if c.v >= 9 {
		header += len(appendTags(nil, c.tags...))
	}
	txn := 0
	switch {
	case c.v >= 9:
		txn = len(kbin.AppendCompactNullableString(nil, c.txn))
	case c.v >= 3:
		txn = len(kbin.AppendNullableString(nil, c.txn))
	}
	return header + txn + 2
}

// produceCases covers every Produce version kmsg knows with acks 0 and -1
// (and odd values), with and without transactional id and client id, and
// header tagged fields on flexible versions.
func produceCases() []produceCase {
	var out []produceCase
	txn, empty, id := "txn-1", "", "client-with-a-longer-id"
	maxV := kmsg.NewPtrProduceRequest().MaxVersion()
	for v := int16(0); v <= maxV; v++ {
		for _, acks := range []int16{0, -1, 1, 0x7fff} {
			txns := []*string{nil}
			if v >= 3 {
				txns = append(txns, &txn, &empty)
			}
			for _, tx := range txns {
				for _, cid := range []*string{nil, &empty, &id} {
					tagSets := [][][]byte{nil}
					if v >= 9 {
						tagSets = append(tagSets, [][]byte{[]byte("abc"), nil, bytes.Repeat([]byte{1}, 200)})
					}
					for _, tags := range tagSets {
						out = append(out, produceCase{v, acks, tx, cid, tags})
					}
				}
			}
		}
	}
	return out
}

func TestProduceCasesCoverKmsg(t *testing.T) {
	if maxV := kmsg.NewPtrProduceRequest().MaxVersion(); maxV < produceMax {
		t.Fatalf("kmsg Produce max v%d, below v%d", maxV, produceMax)
	}
}

// produceAcks finds acks at every version and header shape, and reports
// wire.ErrShortHeader for every truncation that ends before acks does.
func TestProduceAcks(t *testing.T) {
	for _, c := range produceCases() {
		b := c.frame(9)[4:]
		end := c.acksEnd()
		if got, err := wire.ProduceAcks(b, c.v); err != nil || got != c.acks {
			t.Fatalf("%v: produceAcks = %d, %v", c, got, err)
		}
		for n := 0; n < len(b) && n < end+4; n++ {
			got, err := wire.ProduceAcks(b[:n], c.v)
			if n < end && !errors.Is(err, wire.ErrShortHeader) {
				t.Fatalf("%v: %d of %d header bytes: produceAcks = %d, %v; want wire.ErrShortHeader", c, n, end, got, err)
			}
			if n >= end && (err != nil || got != c.acks) {
				t.Fatalf("%v: %d bytes (acks ends at %d): produceAcks = %d, %v", c, n, end, got, err)
			}
		}
	}
}

// A malformed header tag section is reported, not read past.
func TestProduceAcksBadTags(t *testing.T) {
	b := []byte{0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff}
	b = append(b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01) // tag count: six-byte varint
	if _, err := wire.ProduceAcks(b, 9); !errors.Is(err, wire.ErrShortHeader) {
		t.Fatalf("produceAcks = %v", err)
	}
}

// FuzzProduceAcks: arbitrary bytes at any version never panic, and a
// successful read takes acks from inside the input.
func FuzzProduceAcks(f *testing.F) {
	for i, c := range produceCases() {
		if i%7 == 0 {
			f.Add(c.frame(1)[4:], c.v)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, v int16) {
		if _, err := wire.ProduceAcks(b, v); err != nil && !errors.Is(err, wire.ErrShortHeader) {
			t.Fatalf("produceAcks error %v", err)
		}
	})
}

// ParseProduceHead reads transactional id, acks, topic count and the
// first topic (name, or id from v13) at every version and header shape,
// and reports wire.ErrShortHeader for every truncation that ends before
// the first topic does.
func TestParseProduceHead(t *testing.T) {
	for _, c := range produceCases() {
		b := c.frame(9)[4:]
		req := c.request()
		full, err := wire.ParseProduceHead(b, c.v)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		wantTxn := c.txn
		if c.v < 3 {
			wantTxn = nil
		}
		if full.Acks != c.acks || full.Topics != 1 || fmt.Sprint(full.TransactionalID != nil) != fmt.Sprint(wantTxn != nil) ||
			wantTxn != nil && *full.TransactionalID != *wantTxn {
			t.Fatalf("%v: head %+v", c, full)
		}
		if c.v >= 13 && full.TopicID != req.Topics[0].TopicID || c.v < 13 && full.Topic != req.Topics[0].Topic {
			t.Fatalf("%v: first topic %q %x", c, full.Topic, full.TopicID)
		}
		// The head ends with the first topic's name (or id).
		end := bytes.Index(b, []byte(req.Topics[0].Topic)) + len(req.Topics[0].Topic)
		if c.v >= 13 {
			end = bytes.Index(b, req.Topics[0].TopicID[:]) + 16
		}
		for n := 0; n < end; n++ {
			if h, err := wire.ParseProduceHead(b[:n], c.v); !errors.Is(err, wire.ErrShortHeader) {
				t.Fatalf("%v: %d of %d head bytes: %+v, %v; want wire.ErrShortHeader", c, n, end, h, err)
			}
		}
		if h, err := wire.ParseProduceHead(b[:end], c.v); err != nil || headString(h) != headString(full) {
			t.Fatalf("%v: head of %d bytes: %+v, %v", c, end, h, err)
		}
	}
}

func headString(h wire.ProduceHead) string {
	txn := "<null>"
	if h.TransactionalID != nil {
		txn = *h.TransactionalID
	}
	return fmt.Sprintf("txn %q acks %d topics %d first %q %x", txn, h.Acks, h.Topics, h.Topic, h.TopicID)
}

// More topics are counted, an empty list is zero topics.
func TestParseProduceHeadTopics(t *testing.T) {
	for v := int16(0); v <= produceMax; v++ {
		for _, n := range []int{0, 1, 3} {
			req := produceCase{v: v, acks: -1}.request()
			req.Topics = nil
			for i := range n {
				tp := kmsg.NewProduceRequestTopic()
				tp.Topic, tp.TopicID = fmt.Sprintf("t%d", i), [16]byte{byte(i + 1)}
				req.Topics = append(req.Topics, tp)
			}
			h, err := wire.ParseProduceHead(requestFrame(req, 1, nil)[4:], v)
			if err != nil || h.Topics != n || n > 0 && (v < 13 && h.Topic != "t0" || v >= 13 && h.TopicID != [16]byte{1}) {
				t.Fatalf("v%d with %d topics: %+v, %v", v, n, h, err)
			}
		}
	}
}

// FuzzParseProduceHead: arbitrary bytes at any version never panic, and
// whatever kmsg decodes as a Produce request, the head reads the same.
func FuzzParseProduceHead(f *testing.F) {
	for i, c := range produceCases() {
		if i%7 == 0 {
			f.Add(c.frame(1)[4:], c.v)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, v int16) {
		h, err := wire.ParseProduceHead(b, v)
		if err != nil || v < 0 || v > produceMax {
			return
		}
		req, derr := pipeline.DecodeRequest(b)
		if derr != nil || len(b) < 4 || int16(binary.BigEndian.Uint16(b[2:])) != v || req.Key() != kmsg.Produce.Int16() {
			return
		}
		p := req.(*kmsg.ProduceRequest)
		if h.Acks != p.Acks || h.Topics != len(p.Topics) || (h.TransactionalID == nil) != (p.TransactionID == nil) ||
			h.TransactionalID != nil && *h.TransactionalID != *p.TransactionID {
			t.Fatalf("head %+v, kmsg %+v", h, p)
		}
		if len(p.Topics) > 0 && (v < 13 && h.Topic != p.Topics[0].Topic || v >= 13 && h.TopicID != p.Topics[0].TopicID) {
			t.Fatalf("first topic %q %x, kmsg %q %x", h.Topic, h.TopicID, p.Topics[0].Topic, p.Topics[0].TopicID)
		}
	})
}

func BenchmarkProduceAcks(b *testing.B) {
	id, txn := "bench-client", "bench-txn"
	for _, v := range []int16{2, 8, produceMax} {
		frame := produceCase{v: v, acks: -1, txn: &txn, clientID: &id, tags: [][]byte{[]byte("x")}}.frame(1)[4:]
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if acks, err := wire.ProduceAcks(frame, v); err != nil || acks != -1 {
					b.Fatal(acks, err)
				}
			}
		})
	}
}

// Every Produce shape goes through a session: acks=0 gets no response from
// the broker and no place in the FIFO, so the response to the request
// after it still matches; other acks are answered in order.
func TestProduceThroughSession(t *testing.T) {
	h := startSession(t, false, testOptions(), 0)
	corr := int32(0)
	for _, c := range produceCases() {
		corr += 2
		produce, next := c.frame(corr), requestFrame(listOffsets(4, "after"), corr+1, nil)
		produceResp := kmsg.NewPtrProduceResponse()
		produceResp.Version = c.v
		nextResp := responseFrame(listOffsetsResponse(4, "after"), corr+1)
		brokerErr := make(chan error, 1)
		go func() {
			brokerErr <- func() error {
				for _, want := range [][]byte{produce, next} {
					got, err := readFrame(h.broker)
					if err != nil || !bytes.Equal(got, want) {
						return fmt.Errorf("broker got %d bytes (%v), want %d", len(got), err, len(want))
					}
				}
				if c.acks != 0 {
					if err := writeAll(h.broker, responseFrame(produceResp, corr)); err != nil {
						return err
					}
				}
				return writeAll(h.broker, nextResp)
			}()
		}()
		go func() {
			for _, f := range [][]byte{produce, next} {
				if err := writeAll(h.client, f); err != nil {
					t.Errorf("%v: client write: %v", c, err)
					return
				}
			}
		}()
		if c.acks != 0 {
			if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, responseFrame(produceResp, corr)) {
				t.Fatalf("%v: produce response %x, %v", c, f, err)
			}
		}
		if f, err := readFrame(h.client); err != nil || !bytes.Equal(f, nextResp) {
			t.Fatalf("%v: response after produce %x, %v", c, f, err)
		}
		if err := <-brokerErr; err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
}

// A Produce whose client id does not fit the request buffer cannot be
// classified, and closes with a hint to raise the buffer.
func TestProduceHeaderBeyondBuffer(t *testing.T) {
	opts := testOptions()
	opts.RequestBufferSize = 64 // raised to prefixSize
	h := startSession(t, false, opts, 0)
	id := strings.Repeat("c", prefixSize+10)
	go func() { _ = writeAll(h.client, produceCase{v: 7, acks: 0, clientID: &id}.frame(1)) }()
	if err := h.wait(); err == nil || !strings.Contains(err.Error(), "raise --proxy-request-buffer-size") {
		t.Fatalf("Run = %v", err)
	}
}

// The client sends acks=0 records and hangs up at once: the broker still
// reads every byte, and sees the end of the stream (half-close) while the
// proxy waits for it to close, so nothing is reset under unread records.
func TestClientEOFAfterAcks0Produce(t *testing.T) {
	opts := testOptions()
	h := startSession(t, true, opts, 0)
	c := produceCase{v: 9, acks: 0}
	req := c.request()
	req.Topics[0].Partitions[0].Records = bytes.Repeat([]byte("r"), 300<<10)
	frame := requestFrame(req, 1, nil)
	if err := writeAll(h.client, frame); err != nil {
		t.Fatal(err)
	}
	_ = h.client.Close()
	got, err := readFrame(h.broker)
	if err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("broker got %d of %d bytes: %v", len(got), len(frame), err)
	}
	expectEOF(t, h.broker, "broker")
	if !h.running(50 * time.Millisecond) {
		t.Fatal("Run returned before the broker closed: it may reset the connection under unread records")
	}
	_ = h.broker.Close()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
