package rewrite

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// sfMaxVersion is the newest Fetch version kmsg knows: the tests run
// StreamFetch at every version from 16 up to it.
func sfMaxVersion() int16 { return kmsg.NewPtrFetchResponse().MaxVersion() }

// TestStreamFetchKnowsKmsgVersions fails when kmsg learns a Fetch version
// the walk was not checked against: compare FetchResponse.readFrom in kmsg's
// generated.go with StreamFetch's walk, then raise fetchStreamMaxVersion.
func TestStreamFetchKnowsKmsgVersions(t *testing.T) {
	if sfMaxVersion() != fetchStreamMaxVersion {
		t.Fatalf("kmsg parses Fetch up to v%d, StreamFetch was checked up to v%d", sfMaxVersion(), fetchStreamMaxVersion)
	}
}

// sfHost is broker id's advertised host: long enough (78 bytes) that a
// mapper can shorten the endpoints by well over a hundred bytes, short
// enough that its length uvarint stays one byte.
func sfHost(id int32) string {
	return fmt.Sprintf("broker-%d.%s.internal", id, strings.Repeat("k", 60))
}

// sfBlob is a records blob of size bytes (-1: null) that never contains a
// host name.
func sfBlob(size int) []byte {
	if size < 0 {
		return nil
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + size)
	}
	return b
}

// sfBuild is a Fetch response at v with two topics of three partitions (one
// records blob per partition from blobs, missing ones null), aborted
// transactions nil/empty/two, partition tags (diverging epoch, current
// leader, snapshot id, an unknown one), a topic tag, brokers node endpoints
// (some with rack and unknown tags) and two unknown top-level tags.
func sfBuild(v int16, brokers int, blobs ...int) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(v)
	r.ThrottleMillis, r.ErrorCode, r.SessionID = 7, 0, 99
	bi := 0
	for t := range 2 {
		topic := kmsg.NewFetchResponseTopic()
		topic.TopicID = [16]byte{byte(t + 1), 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		if t == 1 {
			topic.UnknownTags.Set(3, []byte("topic-tag"))
		}
		for p := range 3 {
			part := kmsg.NewFetchResponseTopicPartition()
			part.Partition, part.HighWatermark, part.LastStableOffset, part.LogStartOffset = int32(p), 1000+int64(p), 900, 10
			part.PreferredReadReplica = int32(p) - 1
			switch p {
			case 0:
				part.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER: why brokers are sent
				part.CurrentLeader.LeaderID, part.CurrentLeader.LeaderEpoch = 2, 4
			case 1:
				part.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				part.DivergingEpoch.Epoch, part.DivergingEpoch.EndOffset = 3, 77
				part.SnapshotID.Epoch, part.SnapshotID.EndOffset = 2, 55
			case 2:
				a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				a.ProducerID, a.FirstOffset = 11, 12
				b := a
				b.ProducerID = 13
				b.UnknownTags.Set(1, []byte("txn"))
				part.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{a, b}
				part.CurrentLeader.LeaderID, part.CurrentLeader.LeaderEpoch = 3, 5
				part.UnknownTags.Set(9, []byte("partition-tag"))
			}
			size := -1
			if bi < len(blobs) {
				size = blobs[bi]
			}
			bi++
			part.RecordBatches = sfBlob(size)
			topic.Partitions = append(topic.Partitions, part)
		}
		r.Topics = append(r.Topics, topic)
	}
	for id := int32(1); id <= int32(brokers); id++ {
		b := kmsg.NewFetchResponseBroker()
		b.NodeID, b.Host, b.Port = id, sfHost(id), 9092+id
		if id%2 == 0 {
			b.Rack = str("rack-a")
		}
		if id == 3 {
			b.UnknownTags.Set(4, []byte("endpoint-tag"))
		}
		r.Brokers = append(r.Brokers, b)
	}
	r.UnknownTags.Set(5, []byte("five"))
	r.UnknownTags.Set(99, []byte("future"))
	return r
}

// sfMapper adapts a function to Mapper.
type sfMapper func(id int32, host string, port int32) (string, int32, error)

func (f sfMapper) MapBroker(id int32, host string, port int32) (string, int32, error) {
	return f(id, host, port)
}

// sfRun streams body through StreamFetch from a reader that holds the next
// frame's bytes after it, and checks that exactly n bytes were consumed.
func sfRun(t testing.TB, body []byte, v int16, m Mapper, rsize int, raw bool, buf []byte) ([]byte, error) {
	t.Helper()
	next := []byte("NEXT-FRAME")
	src := bytes.NewReader(append(append([]byte(nil), body...), next...))
	r := bufio.NewReaderSize(src, rsize)
	var rawR io.Reader
	if raw {
		rawR = src
	}
	var out bytes.Buffer
	err := StreamFetch(&out, r, rawR, len(body), v, m, buf)
	if err == nil {
		if rest, _ := io.ReadAll(r); !bytes.Equal(rest, next) {
			t.Fatalf("after the body the reader holds %q, want %q", rest, next)
		}
	}
	return out.Bytes(), err
}

func sfDecode(t testing.TB, v int16, body []byte) *kmsg.FetchResponse {
	t.Helper()
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(v)
	if err := r.ReadFrom(body); err != nil {
		t.Fatalf("decode v%d: %v", v, err)
	}
	return r
}

// sfStripPads removes the padding tags from r's top-level unknown tags and
// returns how many there were; every pad's value must be zeros.
func sfStripPads(t testing.TB, r *kmsg.FetchResponse) int {
	t.Helper()
	var kept kmsg.Tags
	pads := 0
	r.UnknownTags.Each(func(k uint32, v []byte) {
		if k != padTagA && k != padTagB {
			kept.Set(k, v)
			return
		}
		pads++
		if len(bytes.Trim(v, "\x00")) != 0 {
			t.Errorf("pad tag %d carries data %x", k, v)
		}
	})
	r.UnknownTags = kept
	return pads
}

// shortenBy returns a mapper that replaces every host with a same-length
// one, except that the hosts together become d bytes shorter.
func shortenBy(d int) Mapper {
	left := d
	return sfMapper(func(id int32, host string, port int32) (string, int32, error) {
		take := min(left, len(host)-1)
		left -= take
		return strings.Repeat("s", len(host)-take), 40000 + id, nil
	})
}

func TestStreamFetchRoundTrip(t *testing.T) {
	type mcase struct {
		name string
		m    func() Mapper
		keep bool // endpoints kept (else dropped)
		pads int  // padding tags expected
	}
	shorter := func() Mapper {
		return sfMapper(func(id int32, _ string, _ int32) (string, int32, error) {
			return fmt.Sprintf("p%d", id), 40000 + id, nil
		})
	}
	cases := []mcase{
		{"shorter", shorter, true, 1},
		{"same length", func() Mapper { return shortenBy(0) }, true, 0},
		{"longer", func() Mapper {
			return sfMapper(func(id int32, host string, _ int32) (string, int32, error) {
				return host + ".proxy.example", 40000 + id, nil
			})
		}, false, 1},
		{"shorter by 1", func() Mapper { return shortenBy(1) }, false, 1},
		{"shorter by 3", func() Mapper { return shortenBy(3) }, false, 1},
		{"shorter by 4", func() Mapper { return shortenBy(4) }, true, 1},
		{"shorter by 5", func() Mapper { return shortenBy(5) }, true, 1},
		// A single pad cannot take 132 bytes (3-byte tag, then 1+128 or
		// 2+127): two pads do.
		{"shorter by 132", func() Mapper { return shortenBy(132) }, true, 2},
		{"shorter by 133", func() Mapper { return shortenBy(133) }, true, 1},
	}
	blobs := []int{-1, 0, 5, 2000, 100 << 10, 40 << 10}
	readers := []struct {
		rsize int
		raw   bool
		buf   int
	}{{4096, true, 32 << 10}, {16, true, 1 << 10}, {4096, false, 0}}
	for v := int16(fetchStreamMinVersion); v <= sfMaxVersion(); v++ {
		body := sfBuild(v, 3, blobs...).AppendTo(nil)
		for _, c := range cases {
			for _, rd := range readers {
				t.Run(fmt.Sprintf("v%d/%s/r%d-raw%v-buf%d", v, c.name, rd.rsize, rd.raw, rd.buf), func(t *testing.T) {
					out, err := sfRun(t, body, v, c.m(), rd.rsize, rd.raw, make([]byte, rd.buf))
					if err != nil {
						t.Fatal(err)
					}
					if len(out) != len(body) {
						t.Fatalf("output %d bytes, input %d", len(out), len(body))
					}
					if bytes.Contains(out, []byte("broker-")) {
						t.Fatal("an original broker host is still in the output")
					}
					want := sfDecode(t, v, body)
					m := c.m()
					if c.keep {
						for i := range want.Brokers {
							b := &want.Brokers[i]
							b.Host, b.Port, _ = m.MapBroker(b.NodeID, b.Host, b.Port)
						}
					} else {
						want.Brokers = nil
					}
					got := sfDecode(t, v, out)
					if pads := sfStripPads(t, got); pads != c.pads {
						t.Errorf("%d padding tags, want %d", pads, c.pads)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("decoded output differs:\n got %+v\nwant %+v", got.Brokers, want.Brokers)
					}
				})
			}
		}
	}
}

// TestStreamFetchUnchanged: without node endpoints, or with a mapper that
// keeps every address, the output is the input byte for byte.
func TestStreamFetchUnchanged(t *testing.T) {
	for v := int16(fetchStreamMinVersion); v <= sfMaxVersion(); v++ {
		noTags := sfBuild(v, 0, 3, 70000)
		noTags.UnknownTags = kmsg.Tags{}
		onlyTags := sfBuild(v, 0, 3)
		calls := 0
		for name, c := range map[string]struct {
			body []byte
			m    Mapper
		}{
			"no tags":        {noTags.AppendTo(nil), errMapper{}},
			"unknown tags":   {onlyTags.AppendTo(nil), errMapper{}},
			"identity":       {sfBuild(v, 3, 1, 2, 3).AppendTo(nil), identityMapper{&calls}},
			"empty brokers":  {sfEmptyBrokers(v), errMapper{}},
			"large, no tags": {sfBuild(v, 0, 1<<20, 0, -1).AppendTo(nil), errMapper{}},
		} {
			out, err := sfRun(t, c.body, v, c.m, 4096, true, make([]byte, 32<<10))
			if err != nil || !bytes.Equal(out, c.body) {
				t.Errorf("v%d %s: err=%v, output equal=%v", v, name, err, bytes.Equal(out, c.body))
			}
		}
		if calls != 3 {
			t.Errorf("v%d: identity mapper called %d times, want 3", v, calls)
		}
	}
}

// sfEmptyBrokers carries tag 0 with an empty endpoints array: there is
// nothing to map.
func sfEmptyBrokers(v int16) []byte {
	r := sfBuild(v, 0, 1)
	r.UnknownTags = kmsg.Tags{}
	body := r.AppendTo(nil)
	return append(body[:len(body)-1], 1, 0, 1, 1) // one tag: 0, size 1, []
}

// TestStreamFetchOversizeEndpoints: a node-endpoints value above
// maxEndpointsSize is not read into memory; it is dropped, unmapped.
func TestStreamFetchOversizeEndpoints(t *testing.T) {
	v := sfMaxVersion()
	r := sfBuild(v, 0, 10)
	for id := int32(1); id <= 10000; id++ {
		r.Brokers = append(r.Brokers, kmsg.FetchResponseBroker{NodeID: id, Host: sfHost(id) + strings.Repeat("x", 20), Port: 9092})
	}
	body := r.AppendTo(nil)
	out, err := sfRun(t, body, v, errMapper{}, 4096, true, make([]byte, 32<<10))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(body) || bytes.Contains(out, []byte("broker-")) {
		t.Fatalf("got %d bytes (want %d), hosts left: %v", len(out), len(body), bytes.Contains(out, []byte("broker-")))
	}
	got := sfDecode(t, v, out)
	if len(got.Brokers) != 0 || sfStripPads(t, got) == 0 {
		t.Fatalf("endpoints not dropped: %d left", len(got.Brokers))
	}
}

// TestStreamFetchMemory: an 8 MiB records blob streams with a few small
// allocations, none proportional to the body.
func TestStreamFetchMemory(t *testing.T) {
	v := sfMaxVersion()
	body := sfBuild(v, 3, 8<<20).AppendTo(nil)
	src := bytes.NewReader(body)
	r := bufio.NewReaderSize(src, 4096)
	buf := make([]byte, 32<<10)
	var w sfCountWriter
	m := shortenBy(10)
	run := func() {
		src.Reset(body)
		r.Reset(src)
		w = sfCountWriter{}
		if err := StreamFetch(&w, r, src, len(body), v, m, buf); err != nil {
			t.Fatal(err)
		}
		if w.n != len(body) {
			t.Fatalf("wrote %d bytes, want %d", w.n, len(body))
		}
	}
	run()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	run()
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<10 {
		t.Fatalf("streaming %d bytes allocated %d bytes", len(body), d)
	}
	allocs := testing.AllocsPerRun(5, run)
	if allocs > 40 {
		t.Fatalf("%v allocations per body", allocs)
	}
	t.Logf("%d-byte body: %v allocations, %d bytes, %d writes", len(body), allocs, after.TotalAlloc-before.TotalAlloc, w.writes)
}

type sfCountWriter struct{ n, writes int }

func (w *sfCountWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	w.writes++
	return len(b), nil
}

// TestStreamFetchFewWrites: small fields are gathered, not written one by
// one (each write to a TLS or TCP socket costs a syscall).
func TestStreamFetchFewWrites(t *testing.T) {
	v := sfMaxVersion()
	blobs := make([]int, 300)
	for i := range blobs {
		blobs[i] = 100
	}
	body := sfOneTopic(v, blobs...)
	var w sfCountWriter
	if err := StreamFetch(&w, bufio.NewReader(bytes.NewReader(body)), nil, len(body), v, errMapper{}, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if w.n != len(body) || w.writes > len(body)/(2<<10)+2 {
		t.Fatalf("%d bytes in %d writes", w.n, w.writes)
	}
}

// sfOneTopic is a plain Fetch body at v: one topic, a partition per blob
// size, no tags, no node endpoints.
func sfOneTopic(v int16, blobs ...int) []byte {
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(v)
	topic := kmsg.NewFetchResponseTopic()
	for p, size := range blobs {
		part := kmsg.NewFetchResponseTopicPartition()
		part.Partition, part.RecordBatches = int32(p), sfBlob(size)
		topic.Partitions = append(topic.Partitions, part)
	}
	r.Topics = []kmsg.FetchResponseTopic{topic}
	return r.AppendTo(nil)
}

// sfRecordWriter records each write.
type sfRecordWriter struct{ writes [][]byte }

func (w *sfRecordWriter) Write(b []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), b...))
	return len(b), nil
}

// TestStreamFetchLargeRecordsFewWrites: the usual consumer response, one
// partition with a large records blob, leaves as header, fields and the
// blob's buffered start in one write, the rest of the blob (from raw),
// and the trailing tags in one more. The proxy reads the response header
// from the same buffer first, as relayFetch does.
func TestStreamFetchLargeRecordsFewWrites(t *testing.T) {
	v := sfMaxVersion()
	const blob = 100 << 10
	body := sfOneTopic(v, blob)
	head := []byte{0, 0, 0, 0, 0, 0, 0, 7, 0} // size, correlation id, no tags
	frame := append(append([]byte(nil), head...), body...)
	src := bytes.NewReader(frame)
	br := bufio.NewReaderSize(src, 4096)
	h, _ := br.Peek(len(head))
	_, _ = br.Discard(len(head))
	var w sfRecordWriter
	copyBuf := make([]byte, 32<<10)
	if err := StreamFetchProgress(&w, br, src, h, len(body), v, errMapper{}, copyBuf, nil); err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(w.writes, nil); !bytes.Equal(got, frame) {
		t.Fatalf("relayed %d bytes, want the %d-byte frame unchanged", len(got), len(frame))
	}
	if len(w.writes[0]) != 4096 {
		t.Fatalf("first write %d bytes, want the reader's whole first fill (4096): header, fields and records in one", len(w.writes[0]))
	}
	if last := w.writes[len(w.writes)-1]; len(last) > 8 {
		t.Fatalf("last write %d bytes, want only the trailing tags", len(last))
	}
	// Between them, the rest of the blob in copy-buffer chunks.
	chunks := (blob - (4096 - len(head) - 80) + len(copyBuf) - 4<<10 - 1) / (len(copyBuf) - 4<<10)
	if len(w.writes) > chunks+2 {
		t.Fatalf("%d writes, want at most %d", len(w.writes), chunks+2)
	}
}

// TestStreamFetchTruncated: every strict prefix of a valid body, given as a
// body of that length, is an error, and no byte past it is consumed.
func TestStreamFetchTruncated(t *testing.T) {
	v := sfMaxVersion()
	body := sfBuild(v, 3, 1, 0, -1, 3000).AppendTo(nil)
	m := sfMapper(func(int32, string, int32) (string, int32, error) { return "p", 1, nil })
	for k := 0; k < len(body); k++ {
		src := bytes.NewReader(body)
		r := bufio.NewReaderSize(src, 16)
		err := StreamFetch(io.Discard, r, src, k, v, m, nil)
		if err == nil {
			t.Fatalf("prefix of %d bytes: no error", k)
		}
		if consumed := len(body) - r.Buffered() - src.Len(); consumed > k {
			t.Fatalf("prefix of %d bytes: consumed %d", k, consumed)
		}
		// And the same prefix with nothing after it (connection closed).
		src = bytes.NewReader(body[:k])
		if err := StreamFetch(io.Discard, bufio.NewReader(src), src, len(body), v, m, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream cut at %d: got %v, want unexpected EOF", k, err)
		}
	}
}

func TestStreamFetchMalformed(t *testing.T) {
	v := sfMaxVersion()
	valid := sfBuild(v, 0, 5).AppendTo(nil)
	empty := func() []byte { // no topics, then the tag section
		return []byte{0, 0, 0, 7, 0, 0, 0, 0, 0, 9, 1}
	}
	endpoint := func(host []byte) []byte {
		b := []byte{2, 0, 0, 0, 1}               // one endpoint, node 1
		b = append(b, host...)                   // host
		return append(b, 0, 0, 0x23, 0x85, 0, 0) // port, null rack, no tags
	}
	withTags := func(tags ...[]byte) []byte {
		b := append(empty(), byte(len(tags)))
		for _, t := range tags {
			b = append(b, t...)
		}
		return b
	}
	tag := func(k byte, val []byte) []byte { return append([]byte{k, byte(len(val))}, val...) }
	b1 := endpoint(append([]byte{4}, "b-1"...))
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"trailing byte", append(append([]byte(nil), valid...), 0)},
		{"null topics", append(empty()[:10], 0, 0)},
		{"topics past end", append(empty()[:10], 50, 0)},
		{"uvarint over 32 bits", append(empty(), 0xff, 0xff, 0xff, 0xff, 0x1f)},
		{"uvarint over 5 bytes", append(empty(), 0x80, 0x80, 0x80, 0x80, 0x80, 0)},
		{"tag count past end", append(empty(), 3, 5, 0)},
		{"tag 0 after another", withTags(tag(5, nil), tag(0, b1))},
		{"tag 0 twice", withTags(tag(0, b1), tag(0, b1))},
		{"tag above the pads", withTags(tag(0, b1), []byte{0xff, 0xff, 0x7f, 0})},
		{"endpoint host null", withTags(tag(0, endpoint([]byte{0})))},
		{"endpoint host past end", withTags(tag(0, endpoint([]byte{40, 'b'})))},
		{"endpoints null", withTags(tag(0, []byte{0}))},
		{"endpoints empty value", withTags(tag(0, nil))},
		{"endpoints trailing byte", withTags(tag(0, append(append([]byte(nil), b1...), 7)))},
		{"endpoints count too big", withTags(tag(0, append([]byte{9}, b1[1:]...)))},
	} {
		out, err := sfRun(t, c.body, v, testMapper{}, 4096, true, nil)
		if !errors.Is(err, ErrMalformedFetch) {
			t.Errorf("%s: got %v (%d bytes out), want ErrMalformedFetch", c.name, err, len(out))
		}
	}
	// The hand-built endpoint is well formed: with it alone, it is mapped.
	if _, err := sfRun(t, withTags(tag(0, b1)), v, testMapper{}, 4096, true, nil); err != nil {
		t.Fatalf("hand-built endpoint: %v", err)
	}
}

func TestStreamFetchErrors(t *testing.T) {
	v := sfMaxVersion()
	body := sfBuild(v, 3, 5).AppendTo(nil)
	_, err := sfRun(t, body, v, errMapper{}, 4096, true, nil)
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), sfHost(1)+":9093") {
		t.Errorf("mapper error: got %v", err)
	}
	if _, err := sfRun(t, body, 15, testMapper{}, 4096, true, nil); err == nil {
		t.Error("v15: no error")
	}
	if _, err := sfRun(t, body, v+1, testMapper{}, 4096, true, nil); !errors.Is(err, pipeline.ErrUnsupportedVersion) {
		t.Errorf("v%d: got %v, want pipeline.ErrUnsupportedVersion", v+1, err)
	}
	if err := StreamFetch(io.Discard, bufio.NewReader(bytes.NewReader(body)), nil, -1, v, testMapper{}, nil); err == nil {
		t.Error("negative size: no error")
	}
	big := sfBuild(v, 3, 1<<20).AppendTo(nil)
	for _, after := range []int{0, 100, 70000, len(big) - 10} {
		w := &sfFailWriter{after: after}
		err := StreamFetch(w, bufio.NewReader(bytes.NewReader(big)), nil, len(big), v, shortenBy(0), nil)
		if !errors.Is(err, errBoom) {
			t.Errorf("writer failing after %d bytes: got %v", after, err)
		}
	}
}

type sfFailWriter struct{ after, n int }

func (w *sfFailWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > w.after {
		return 0, errBoom
	}
	w.n += len(b)
	return len(b), nil
}

// TestPlanTagSection checks the padding rule on its own: the rebuilt head
// always has the original length; endpoints are kept when they are as long
// as before or at least four bytes shorter; dropping always fits.
func TestPlanTagSection(t *testing.T) {
	headLen := func(p tagPlan, newLen int) int {
		n := kbin.UvarintLen(p.count)
		if p.keep {
			n += 1 + kbin.UvarintLen(uint32(newLen)) + newLen
		}
		for i := range p.npads {
			n += padLen(padTag(i), p.pads[i])
		}
		return n
	}
	for _, count := range []uint32{1, 2, 3, 126, 127, 128} {
		check := func(oldLen, newLen int) {
			p, ok := planTagSection(count, oldLen, newLen)
			if !ok {
				t.Fatalf("count %d, old %d, new %d: no plan", count, oldLen, newLen)
			}
			if got := headLen(p, newLen); got != oldLen {
				t.Fatalf("count %d, old %d, new %d: plan %+v takes %d bytes", count, oldLen, newLen, p, got)
			}
			wantCount := uint64(count) - 1 + uint64(p.npads)
			if p.keep {
				wantCount++
			}
			if uint64(p.count) != wantCount {
				t.Fatalf("plan %+v: count %d, want %d", p, p.count, wantCount)
			}
			if count < 127 && newLen >= 0 {
				oldEntry := oldLen - kbin.UvarintLen(uint32(count))
				d := oldEntry - (1 + kbin.UvarintLen(uint32(newLen)) + newLen)
				if wantKeep := d == 0 || d >= 4; p.keep != wantKeep {
					t.Fatalf("count %d, old entry %d, new value %d (d=%d): keep=%v", count, oldEntry, newLen, d, p.keep)
				}
			}
		}
		for entry := 14; entry < 40000; entry++ {
			oldLen := kbin.UvarintLen(uint32(count)) + entry
			check(oldLen, -1)
			for _, d := range []int{-5, -1, 0, 1, 2, 3, 4, 5, 131, 132, 133, 16388, 16389, 16390} {
				if newLen := entry - d - 3; newLen >= 0 && kbin.UvarintLen(uint32(newLen)) == 1 {
					check(oldLen, newLen)
				}
			}
		}
		for _, entry := range []int{1<<21 - 8, 1<<21 + 3, 1<<21 + 4, 1<<21 + 7, 1<<28 + 5, 1<<28 + 6} {
			check(kbin.UvarintLen(uint32(count))+entry, -1)
		}
	}
}

// FuzzStreamFetch streams arbitrary bodies at every version StreamFetch
// takes. It must not panic, hang, or read past the body; on success it has
// written exactly n bytes, streaming its own output again changes nothing,
// and, when kmsg can decode the input, the output decodes to the same
// response with every endpoint mapped or none left.
func FuzzStreamFetch(f *testing.F) {
	minV, maxV := int16(fetchStreamMinVersion), sfMaxVersion()
	for v := minV; v <= maxV; v++ {
		f.Add(uint8(v-minV), sfBuild(v, 3, 1, 0, -1, 40).AppendTo(nil))
		f.Add(uint8(v-minV), sfBuild(v, 0, 2).AppendTo(nil))
		one := sfBuild(v, 1)
		one.Brokers[0].Host = "h"
		f.Add(uint8(v-minV), one.AppendTo(nil))
	}
	m := sfMapper(func(_ int32, host string, _ int32) (string, int32, error) {
		if host == "fail" {
			return "", 0, errBoom
		}
		return "proxy", 1, nil
	})
	f.Fuzz(func(t *testing.T, vb uint8, body []byte) {
		body = defuseTagCounts(body) // for kmsg below; StreamFetch needs no help
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("StreamFetch hangs: v%d body %x", vb, body)) })
		defer watchdog.Stop()
		v := minV + int16(vb)%(maxV-minV+1)
		out, err := sfRun(t, body, v, m, 16, true, make([]byte, 1<<10)) // checks it consumed exactly n
		if err != nil {
			return
		}
		if len(out) != len(body) {
			t.Fatalf("output %d bytes, body %d", len(out), len(body))
		}
		again, err := sfRun(t, out, v, m, 4096, false, nil)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second pass over the output: err=%v equal=%v", err, bytes.Equal(again, out))
		}
		want := kmsg.NewPtrFetchResponse()
		want.SetVersion(v)
		if want.ReadFrom(body) != nil {
			return
		}
		got := sfDecode(t, v, out)
		sfStripPads(t, got)
		for _, b := range got.Brokers {
			if b.Host != "proxy" || b.Port != 1 {
				t.Fatalf("endpoint %d left at %s:%d", b.NodeID, b.Host, b.Port)
			}
		}
		if len(got.Brokers) > 0 {
			for i := range want.Brokers {
				want.Brokers[i].Host, want.Brokers[i].Port = "proxy", 1
			}
		} else {
			want.Brokers = got.Brokers // none left: dropped, or none sent
		}
		var kept kmsg.Tags // the input's own pad-numbered tags are not compared
		want.UnknownTags.Each(func(k uint32, v []byte) {
			if k != padTagA && k != padTagB {
				kept.Set(k, v)
			}
		})
		want.UnknownTags = kept
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("output decodes differently:\n got %+v\nwant %+v", got, want)
		}
	})
}

// BenchmarkStreamFetch: a Fetch response with 1 MiB of records and three
// node endpoints, streamed versus buffered and decoded (the path it
// replaces).
func BenchmarkStreamFetch(b *testing.B) {
	v := sfMaxVersion()
	body := sfBuild(v, 3, 1<<20).AppendTo(nil)
	m := sfMapper(func(id int32, _ string, _ int32) (string, int32, error) { return "127.0.0.1", 40000 + id, nil })
	b.Run("stream", func(b *testing.B) {
		src := bytes.NewReader(body)
		r := bufio.NewReaderSize(src, 64<<10)
		buf := make([]byte, 32<<10)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(body)
			r.Reset(src)
			if err := StreamFetch(io.Discard, r, src, len(body), v, m, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("buffer+decode", func(b *testing.B) {
		c := testChain(b, m)
		src := bytes.NewReader(body)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(body)
			frame := make([]byte, len(body))
			if _, err := io.ReadFull(src, frame); err != nil {
				b.Fatal(err)
			}
			out, _, err := runChain(c, 1, v, frame)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Discard.Write(out)
		}
	})
}
