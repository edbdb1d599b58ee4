package policy_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/audit"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/policy"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// produceOf is a Produce at v naming topics (by name, or by id from v13),
// each with one partition of record bytes.
func produceOf(v int16, txn *string, topics ...string) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.SetVersion(v)
	r.Acks, r.TimeoutMillis = -1, 1000
	if v >= 3 {
		r.TransactionID = txn
	}
	ids := map[string][16]byte{"ok-t": okID, "no-t": noID}
	for _, name := range topics {
		t := kmsg.NewProduceRequestTopic()
		t.Topic, t.TopicID = name, ids[name]
		if v >= 13 && t.TopicID == ([16]byte{}) {
			t.TopicID = [16]byte{0x77, byte(len(name))} // never learned
		}
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition, p.Records = 3, []byte(strings.Repeat("records ", 64))
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	}
	return r
}

// TestACLStageProduceHead: a Produce is decided from its head when it can
// be, at every version: an allowed single-topic request passes with its
// body unread (spliced through, records untouched), while several topics,
// an unknown topic id, a head cut short, or any denial read the request
// whole and get the same answer as the full check. Each decision is
// audited once either way.
func TestACLStageProduceHead(t *testing.T) {
	okX, noX := "ok-x", "no-x"
	type want struct {
		read bool   // the body is read
		code string // error in the answer; "" passes unchanged
	}
	type headCase struct {
		name   string
		req    *kmsg.ProduceRequest
		headN  int // bytes of head buffered; 0: all but the last 100
		want   want
		events int // Produce lines in the audit trail (allowed ones recorded)
	}
	for v := int16(0); v <= kmsg.NewPtrProduceRequest().MaxVersion(); v++ {
		cases := []headCase{
			{"allowed", produceOf(v, nil, "ok-t"), 0, want{false, ""}, 1},
			{"denied", produceOf(v, nil, "no-t"), 0, want{true, "TOPIC_AUTHORIZATION_FAILED"}, 1},
			{"two allowed", produceOf(v, nil, "ok-t", "ok-t"), 0, want{true, ""}, 2},
			{"one of two denied", produceOf(v, nil, "ok-t", "no-t"), 0, want{true, "TOPIC_AUTHORIZATION_FAILED"}, 2},
			{"short head", produceOf(v, nil, "ok-t"), 14, want{true, ""}, 1},
		}
		if v >= 3 {
			cases = append(cases,
				headCase{"allowed txn", produceOf(v, &okX, "ok-t"), 0, want{false, ""}, 2},
				headCase{"denied txn", produceOf(v, &noX, "ok-t"), 0, want{true, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"}, 1})
		}
		if v >= 13 {
			cases = append(cases, headCase{"unknown id", produceOf(v, nil, "ok-unlearned"), 0, want{true, "UNKNOWN_TOPIC_ID"}, 0})
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("v%d/%s", v, tc.name), func(t *testing.T) {
				trailFile := filepath.Join(t.TempDir(), "audit.log")
				trail, err := audit.Open(trailFile, true)
				if err != nil {
					t.Fatal(err)
				}
				defer trail.Close()
				st := policy.ACLs(aliceRules(), slog.New(slog.NewTextHandler(io.Discard, nil)), trail)
				teachIDs(t, st)
				frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, tc.req, 7)
				// The head ends in the first partition's records, as a
				// connection's buffer would hold it for a large request.
				head := frame[:len(frame)-100]
				if tc.headN > 0 {
					head = frame[:tc.headN]
				}
				c := &pipeline.Client{Principal: "User:alice", Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}}
				ex := pipeline.NewExchange(c, tc.req.Key(), v, 7, nil)
				src := &countingReader{r: bytes.NewReader(frame)}
				ex.Unread(head, src, len(frame))
				verdict := st.OnRequest(ex)
				if got := src.n > 0; got != tc.want.read || src.n > len(frame) {
					t.Fatalf("%d body bytes read, want read: %v", src.n, tc.want.read)
				}
				switch {
				case tc.want.code == "":
					if verdict.Action != pipeline.Forward {
						t.Fatalf("verdict %v (%v), want forward", verdict.Action, verdict.Err)
					}
					if out := ex.Frame(); tc.want.read && string(out) != string(frame) || !tc.want.read && out != nil {
						t.Fatalf("forwarded %d bytes, want the client's frame (read %v)", len(out), tc.want.read)
					}
				case verdict.Action == pipeline.Answer:
					lines := kafkatest.ErrorCodes(roundTrip(t, tc.req.Key(), v, verdict.Response))
					if !strings.Contains(strings.Join(lines, "\n"), tc.want.code) {
						t.Fatalf("answer %q, want %s", lines, tc.want.code)
					}
				case verdict.Action == pipeline.Forward && ex.AfterFunc() != nil:
					// Partly denied: the merged answer carries the denial.
					resp := kmsg.NewPtrProduceResponse()
					resp.SetVersion(v)
					ex.AfterFunc()(resp)
					lines := kafkatest.ErrorCodes(roundTrip(t, tc.req.Key(), v, resp))
					if !strings.Contains(strings.Join(lines, "\n"), tc.want.code) {
						t.Fatalf("merged answer %q, want %s", lines, tc.want.code)
					}
				default:
					t.Fatalf("verdict %v (%v), want an answer with %s", verdict.Action, verdict.Err, tc.want.code)
				}
				trail.Close()
				b, err := os.ReadFile(trailFile)
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Count(string(b), `"api_key":"Produce"`)
				if lines != tc.events {
					t.Fatalf("%d Produce audit lines, want %d:\n%s", lines, tc.events, b)
				}
			})
		}
	}
}
