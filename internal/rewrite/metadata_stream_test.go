package rewrite

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataBody is a Metadata response at version with brokers b-0.. (as
// testMapper expects them), racks and tags where the version has them,
// and topics with partitions.
func metadataBody(version int16, brokers, topics, partitions int) []byte {
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = version
	resp.ThrottleMillis = 7
	for i := range brokers {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(i), fmt.Sprintf("b-%d", i), 9092+int32(i)
		if i%2 == 0 {
			rack := fmt.Sprintf("rack-%d", i)
			b.Rack = &rack
		}
		if version >= 9 && i == 1 {
			b.UnknownTags.Set(5, []byte("tag"))
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	cluster := "cluster-id"
	resp.ClusterID = &cluster
	resp.ControllerID = 1
	for i := range topics {
		tp := kmsg.NewMetadataResponseTopic()
		name := fmt.Sprintf("topic-%d", i)
		tp.Topic = &name
		tp.TopicID[0] = byte(i + 1)
		tp.AuthorizedOperations = 248
		for p := range partitions {
			pt := kmsg.NewMetadataResponseTopicPartition()
			pt.Partition, pt.Leader, pt.LeaderEpoch = int32(p), int32(p%brokers), 3
			pt.Replicas, pt.ISR = []int32{0, 1, 2}, []int32{0, 1}
			tp.Partitions = append(tp.Partitions, pt)
		}
		resp.Topics = append(resp.Topics, tp)
	}
	resp.AuthorizedOperations = 8
	if version >= 9 {
		resp.UnknownTags.Set(9, []byte("top"))
	}
	return resp.AppendTo(nil)
}

// streamMetadata runs StreamMetadata over body behind a header (with
// header tags on flexible versions), through a reader of bufSize, and
// returns what it wrote.
func streamMetadata(t testing.TB, body []byte, version int16, m Mapper, bufSize int, viaRaw bool) ([]byte, []byte, error) {
	head := binary.BigEndian.AppendUint32(nil, 0)
	head = binary.BigEndian.AppendUint32(head, 77) // correlation id
	if version >= 9 {
		head = append(head, 0) // no header tags
	}
	binary.BigEndian.PutUint32(head, uint32(len(head)-4+len(body)))
	src := bytes.NewReader(body)
	r := bufio.NewReaderSize(src, bufSize)
	var raw *bytes.Reader
	if viaRaw {
		raw = src
	}
	var out bytes.Buffer
	var err error
	if raw != nil {
		err = StreamMetadata(&out, r, raw, head, len(body), version, m, make([]byte, 1024), nil)
	} else {
		err = StreamMetadata(&out, r, nil, head, len(body), version, m, make([]byte, 1024), nil)
	}
	return out.Bytes(), head, err
}

// TestStreamMetadataEveryVersion: at every version kmsg knows, the
// streamed response decodes to exactly what the whole-message rewrite
// gives (brokers mapped; topics, partitions, leaders, errors, ids, tags
// as the broker sent them), its size prefix is its length, and a mapping
// that changes nothing passes the bytes untouched.
func TestStreamMetadataEveryVersion(t *testing.T) {
	for v := int16(0); v <= kmsg.NewPtrMetadataResponse().MaxVersion(); v++ {
		for _, tc := range []struct {
			brokers, topics, partitions, buf int
			raw                              bool
		}{{3, 0, 0, 16, false}, {3, 20, 10, 16, true}, {50, 200, 10, 4096, true}, {1, 5, 3, 1 << 16, false}} {
			body := metadataBody(v, tc.brokers, tc.topics, tc.partitions)
			want := kmsg.NewPtrMetadataResponse()
			want.Version = v
			if err := want.ReadFrom(body); err != nil {
				t.Fatal(err)
			}
			if _, err := rewriteMetadata(want, testMapper{}); err != nil {
				t.Fatal(err)
			}
			out, head, err := streamMetadata(t, body, v, testMapper{}, tc.buf, tc.raw)
			if err != nil {
				t.Fatalf("v%d %+v: %v", v, tc, err)
			}
			if size := int(binary.BigEndian.Uint32(out)); size != len(out)-4 {
				t.Fatalf("v%d: size prefix %d for %d bytes", v, size, len(out)-4)
			}
			if !bytes.Equal(out[4:len(head)], head[4:]) {
				t.Fatalf("v%d: header %x, want %x", v, out[4:len(head)], head[4:])
			}
			got := kmsg.NewPtrMetadataResponse()
			got.Version = v
			if err := got.ReadFrom(out[len(head):]); err != nil {
				t.Fatalf("v%d: decode streamed: %v", v, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("v%d %+v: streamed response differs from the whole-message rewrite:\n got %+v\nwant %+v", v, tc, got.Brokers, want.Brokers)
			}
			var calls int
			same, _, err := streamMetadata(t, body, v, identityMapper{&calls}, tc.buf, tc.raw)
			if err != nil || !bytes.Equal(same[len(head):], body) {
				t.Errorf("v%d: an identity mapping changed the bytes (%v)", v, err)
			}
		}
	}
}

// TestStreamMetadataRefuses: a body the walk cannot read, a mapper error
// and a version kmsg does not know fail before anything is written.
func TestStreamMetadataRefuses(t *testing.T) {
	body := metadataBody(12, 3, 2, 2)
	for _, cut := range []int{0, 3, 10, 20} {
		out, _, err := streamMetadata(t, body[:cut], 12, testMapper{}, 16, false)
		if !errors.Is(err, ErrMalformedMetadata) || len(out) > 0 {
			t.Errorf("body cut at %d: %v, wrote %d bytes", cut, err, len(out))
		}
	}
	huge := append(binary.BigEndian.AppendUint32(nil, 0), 0xff, 0xff, 0xff, 0xff, 0x7f) // throttle, then a 5-byte varint over 32 bits
	if _, _, err := streamMetadata(t, huge, 12, testMapper{}, 16, false); !errors.Is(err, ErrMalformedMetadata) {
		t.Errorf("an overlong broker count: %v", err)
	}
	nullHost := append(binary.BigEndian.AppendUint32(nil, 0), 2, 0, 0, 0, 0, 0) // one broker, node 0, null host
	if _, _, err := streamMetadata(t, nullHost, 12, testMapper{}, 16, false); !errors.Is(err, ErrMalformedMetadata) {
		t.Errorf("a null host: %v", err)
	}
	out, _, err := streamMetadata(t, metadataBody(12, 3, 1, 1), 12, errMapper{}, 16, false)
	if err == nil || len(out) > 0 {
		t.Errorf("mapper error: %v, wrote %d bytes", err, len(out))
	}
	if _, _, err := streamMetadata(t, body, 99, testMapper{}, 16, false); err == nil {
		t.Error("v99 streamed")
	}
}

// FuzzStreamMetadata: any body at any version either fails, or streams to
// a response of the announced size that decodes as the whole-message
// rewrite does.
func FuzzStreamMetadata(f *testing.F) {
	for v := int16(0); v <= 13; v++ {
		f.Add(v, metadataBody(v, 2, 1, 1))
	}
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		out, head, err := streamMetadata(t, body, v, testMapper{}, 16, true)
		if err != nil {
			return
		}
		if size := int(binary.BigEndian.Uint32(out)); size != len(out)-4 {
			t.Fatalf("size prefix %d for %d bytes", size, len(out)-4)
		}
		want := kmsg.NewPtrMetadataResponse()
		want.Version = v
		if want.ReadFrom(body) != nil {
			return // kmsg cannot read the topics: the client will not either
		}
		if _, err := rewriteMetadata(want, testMapper{}); err != nil {
			t.Fatalf("streamed, but the whole-message rewrite fails: %v", err)
		}
		got := kmsg.NewPtrMetadataResponse()
		got.Version = v
		if err := got.ReadFrom(out[len(head):]); err != nil {
			t.Fatalf("decode streamed: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("streamed %+v\nwhole %+v", got, want)
		}
	})
}
