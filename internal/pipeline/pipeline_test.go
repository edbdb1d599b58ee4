package pipeline

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fake is a configurable stage that records what it saw.
type fake struct {
	name    string
	in      Interest
	verdict Verdict
	change  func(kmsg.Response) bool
	seen    *[]string
}

func (f *fake) Name() string       { return f.name }
func (f *fake) Interest() Interest { return f.in }
func (f *fake) OnRequest(ex *Exchange) Verdict {
	*f.seen = append(*f.seen, f.name+":req")
	return f.verdict
}
func (f *fake) OnResponse(ex *Exchange, resp kmsg.Response) (bool, error) {
	*f.seen = append(*f.seen, f.name+":resp")
	if f.change != nil {
		return f.change(resp), nil
	}
	return false, nil
}

// headerOnly declares interest but implements neither interface.
type headerOnly struct{ in Interest }

func (headerOnly) Name() string         { return "bare" }
func (h headerOnly) Interest() Interest { return h.in }

// streamer streams Fetch v16+.
type streamer struct{ fake }

func (streamer) Streams(key, version int16) bool { return key == 1 && version >= 16 }
func (streamer) Stream(io.Writer, *bufio.Reader, io.Reader, []byte, int, int16, int16, []byte, func()) error {
	return nil
}

func mustChain(t *testing.T, stages ...Stage) *Chain {
	t.Helper()
	c, err := NewChain(stages...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChainSpans: overlapping declarations are cut into spans, and each
// version routes to exactly the stages that declared it.
func TestChainSpans(t *testing.T) {
	var seen []string
	a := &fake{name: "a", seen: &seen, in: Interest{Requests: []Keys{{Key: kmsg.Produce, MinVersion: 3, MaxVersion: 7}}}}
	b := &fake{name: "b", seen: &seen, in: Interest{
		Requests:  []Keys{{Key: kmsg.Produce, MinVersion: 5, MaxVersion: AnyVersion, Body: true}},
		Responses: []Keys{AllVersions(kmsg.Metadata)},
	}}
	c := mustChain(t, a, b)
	for v := int16(0); v <= 20; v++ {
		r := c.Route(kmsg.Produce.Int16(), v)
		wantA, wantB := v >= 3 && v <= 7, v >= 5
		if got := r.req&1 != 0; got != wantA {
			t.Errorf("Produce v%d: a=%v want %v", v, got, wantA)
		}
		if got := r.req&2 != 0; got != wantB {
			t.Errorf("Produce v%d: b=%v want %v", v, got, wantB)
		}
		if r.RequestBody() != wantB || r.Response() {
			t.Errorf("Produce v%d: body=%v response=%v", v, r.RequestBody(), r.Response())
		}
		if r := c.Route(kmsg.Metadata.Int16(), v); !r.Response() || r.Request() {
			t.Errorf("Metadata v%d: %+v", v, r)
		}
	}
	if r := c.Route(kmsg.Produce.Int16(), AnyVersion); r.req != 2 {
		t.Errorf("Produce at AnyVersion: %+v", r)
	}
	for _, key := range []int16{-1, 2, 9999} {
		if r := c.Route(key, 0); r.Request() || r.Response() || c.Streamer(r) != nil {
			t.Errorf("key %d routed: %+v", key, r)
		}
	}
	var nilChain *Chain
	if r := nilChain.Route(0, 0); r.Request() || r.Response() || nilChain.Streamer(r) != nil {
		t.Error("nil chain routes")
	}
}

// TestChainOrder: request stages run in chain order; the first answer or
// close ends the run, and a close names its stage.
func TestChainOrder(t *testing.T) {
	var seen []string
	all := Interest{Requests: []Keys{AllVersions(kmsg.Metadata)}}
	boom := errors.New("boom")
	resp := kmsg.NewPtrMetadataResponse()
	a := &fake{name: "a", seen: &seen, in: all}
	b := &fake{name: "b", seen: &seen, in: all, verdict: Refuse(boom)}
	d := &fake{name: "d", seen: &seen, in: all, verdict: Reply(resp)}
	c := mustChain(t, a, b, d)
	v := c.OnRequest(c.Route(3, 1), &Exchange{Key: 3, Version: 1})
	if v.Action != Close || !errors.Is(v.Err, boom) || !strings.HasPrefix(v.Err.Error(), "b: ") {
		t.Errorf("verdict %+v", v)
	}
	if strings.Join(seen, ",") != "a:req,b:req" {
		t.Errorf("ran %v", seen)
	}
	seen = nil
	c = mustChain(t, a, d, b)
	if v := c.OnRequest(c.Route(3, 1), &Exchange{Key: 3, Version: 1}); v.Action != Answer || v.Response != resp {
		t.Errorf("verdict %+v", v)
	}
	if strings.Join(seen, ",") != "a:req,d:req" {
		t.Errorf("ran %v", seen)
	}
	seen = nil
	c = mustChain(t, a)
	if v := c.OnRequest(c.Route(3, 1), &Exchange{Key: 3, Version: 1}); v.Action != Forward {
		t.Errorf("verdict %+v", v)
	}
}

func TestNewChainRejects(t *testing.T) {
	var seen []string
	for name, stages := range map[string][]Stage{
		"requests without OnRequest":   {headerOnly{Interest{Requests: []Keys{AllVersions(kmsg.Produce)}}}},
		"responses without OnResponse": {headerOnly{Interest{Responses: []Keys{AllVersions(kmsg.Produce)}}}},
		"negative key":                 {&fake{name: "x", seen: &seen, in: Interest{Requests: []Keys{{Key: -1}}}}},
		"empty range":                  {&fake{name: "x", seen: &seen, in: Interest{Requests: []Keys{{Key: 0, MinVersion: 5, MaxVersion: 4}}}}},
	} {
		if _, err := NewChain(stages...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	many := make([]Stage, maxStages+1)
	for i := range many {
		many[i] = headerOnly{}
	}
	if _, err := NewChain(many...); err == nil {
		t.Error("65 stages accepted")
	}
	if _, err := NewChain(many[:maxStages]...); err != nil {
		t.Errorf("64 stages: %v", err)
	}
}

// TestStreamer: a response streams only when the streaming stage is its
// only response stage and streams the whole span.
func TestStreamer(t *testing.T) {
	var seen []string
	s := &streamer{fake{name: "s", seen: &seen, in: Interest{Responses: []Keys{{Key: kmsg.Fetch, MinVersion: 12, MaxVersion: AnyVersion}}}}}
	c := mustChain(t, s)
	for v := int16(12); v <= 20; v++ {
		if got := c.Streamer(c.Route(1, v)) != nil; got != (v >= 16) {
			t.Errorf("Fetch v%d: streams=%v", v, got)
		}
	}
	other := &fake{name: "o", seen: &seen, in: Interest{Responses: []Keys{{Key: kmsg.Fetch, MinVersion: 18, MaxVersion: 18}}}}
	c = mustChain(t, s, other)
	if c.Streamer(c.Route(1, 18)) != nil || c.Streamer(c.Route(1, 17)) == nil {
		t.Error("a second response stage must turn streaming off for its span only")
	}
}

// TestOnResponse: the body is decoded once for all stages, returned as is
// when none changed it, and re-encoded (never in place) when one did.
func TestOnResponse(t *testing.T) {
	var seen []string
	meta := func(change func(kmsg.Response) bool, name string) *fake {
		return &fake{name: name, seen: &seen, change: change, in: Interest{Responses: []Keys{AllVersions(kmsg.Metadata)}}}
	}
	rename := func(r kmsg.Response) bool {
		m := r.(*kmsg.MetadataResponse)
		m.Brokers[0].Host = "proxy"
		return true
	}
	for v := int16(0); v <= kmsg.NewPtrMetadataResponse().MaxVersion(); v++ {
		in := kmsg.NewPtrMetadataResponse()
		in.SetVersion(v)
		in.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "broker", Port: 9092}}
		body := in.AppendTo(nil)
		seen = nil
		c := mustChain(t, meta(nil, "a"), meta(nil, "b"))
		out, changed, err := c.OnResponse(c.Route(3, v), &Exchange{Key: 3, Version: v}, body)
		if err != nil || changed || &out[0] != &body[0] || strings.Join(seen, ",") != "a:resp,b:resp" {
			t.Fatalf("v%d: unchanged run: changed=%v err=%v seen=%v", v, changed, err, seen)
		}
		orig := string(body)
		c = mustChain(t, meta(nil, "a"), meta(rename, "b"))
		out, changed, err = c.OnResponse(c.Route(3, v), &Exchange{Key: 3, Version: v}, body)
		if err != nil || !changed || string(body) != orig {
			t.Fatalf("v%d: changed=%v err=%v (body modified: %v)", v, changed, err, string(body) != orig)
		}
		got := kmsg.NewPtrMetadataResponse()
		got.SetVersion(v)
		if err := got.ReadFrom(out); err != nil || got.Brokers[0].Host != "proxy" {
			t.Fatalf("v%d: re-encoded %+v, %v", v, got.Brokers, err)
		}
		if _, _, err := c.OnResponse(c.Route(3, v), &Exchange{Key: 3, Version: v}, body[:len(body)-1]); err == nil {
			t.Errorf("v%d: truncated body decoded", v)
		}
	}
}

// TestAppendResponse: every response of every key at every version kmsg
// knows frames so that the header kmsg expects for it can be read back.
func TestAppendResponse(t *testing.T) {
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		proto := kmsg.ResponseForKey(key)
		if proto == nil {
			continue
		}
		for v := int16(0); v <= proto.MaxVersion(); v++ {
			resp := kmsg.ResponseForKey(key)
			resp.SetVersion(v)
			frame := AppendResponse([]byte("junk"), resp, 77)
			frame = frame[4:]
			if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
				t.Fatalf("%s v%d: size %d for %d bytes", kmsg.NameForKey(key), v, n, len(frame)-4)
			}
			r := kbin.Reader{Src: frame[4:]}
			if corr := r.Int32(); corr != 77 {
				t.Fatalf("%s v%d: correlation %d", kmsg.NameForKey(key), v, corr)
			}
			if resp.IsFlexible() && key != kmsg.ApiVersions.Int16() {
				kmsg.SkipTags(&r)
			}
			back := kmsg.ResponseForKey(key)
			back.SetVersion(v)
			if err := back.ReadFrom(r.Src); err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			}
			corr, got, err := DecodeResponseFrame(key, v, frame[4:])
			if err != nil || corr != 77 || got.Key() != key || got.GetVersion() != v {
				t.Fatalf("%s v%d: DecodeResponseFrame = %d, %v, %v", kmsg.NameForKey(key), v, corr, got, err)
			}
		}
	}
}

// TestDecodeRequest: every request of every key at every version, framed
// by kmsg's formatter, decodes back to its key and version.
func TestDecodeRequest(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("app"))
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		proto := kmsg.RequestForKey(key)
		if proto == nil {
			continue
		}
		for v := int16(0); v <= proto.MaxVersion(); v++ {
			if key == kmsg.ControlledShutdown.Int16() && v == 0 {
				continue // kmsg's formatter writes neither client id nor body for it
			}
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			frame := f.AppendRequest(nil, req, 5)
			got, err := DecodeRequest(frame[4:])
			if err != nil || got.Key() != key || got.GetVersion() != v {
				t.Fatalf("%s v%d: %v, %v", kmsg.NameForKey(key), v, got, err)
			}
		}
	}
}

// TestExchangeReplace: a replaced request is re-encoded at the client's
// version with its correlation and client id; an untouched one is the
// client's own frame.
func TestExchangeReplace(t *testing.T) {
	for v := int16(0); v <= kmsg.NewPtrMetadataRequest().MaxVersion(); v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		topic := "orders"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
		frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("app-1")).AppendRequest(nil, req, 42)
		ex := NewExchange(nil, kmsg.Metadata.Int16(), v, 42, frame)
		if &ex.Frame()[0] != &frame[0] {
			t.Fatalf("v%d: untouched frame copied", v)
		}
		got, err := ex.Request()
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		m := got.(*kmsg.MetadataRequest)
		if len(m.Topics) != 1 || *m.Topics[0].Topic != "orders" {
			t.Fatalf("v%d: decoded %+v", v, m.Topics)
		}
		other := "payments"
		m.Topics[0].Topic = &other
		ex.Replace(m)
		out := ex.Frame()
		back := NewExchange(nil, kmsg.Metadata.Int16(), v, 42, out)
		id, err := parseClientID(out[4:])
		if err != nil || id == nil || *id != "app-1" {
			t.Fatalf("v%d: client id %v %v", v, id, err)
		}
		if corr := int32(binary.BigEndian.Uint32(out[8:])); corr != 42 {
			t.Fatalf("v%d: correlation %d", v, corr)
		}
		r2, err := back.Request()
		if err != nil || *r2.(*kmsg.MetadataRequest).Topics[0].Topic != "payments" {
			t.Fatalf("v%d: replaced frame %v", v, err)
		}
	}
	if _, err := NewExchange(nil, kmsg.Metadata.Int16(), 1, 1, nil).Request(); err == nil {
		t.Error("Request without a frame")
	}
	big := kmsg.NewPtrMetadataRequest().MaxVersion() + 1
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrMetadataRequest(), 1)
	if _, err := NewExchange(nil, kmsg.Metadata.Int16(), big, 1, frame).Request(); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("v%d: %v", big, err)
	}
}

// TestDecodeBadInput: truncated or garbage requests and responses are
// errors, never panics.
func TestDecodeBadInput(t *testing.T) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: []byte{1, 2, 3}}}}}
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
	for cut := 12; cut < len(frame); cut++ {
		if _, err := decodeRequest(frame[4:cut], 0, 9); err == nil {
			t.Errorf("cut at %d decoded", cut)
		}
	}
	if _, err := DecodeResponse(3, 12, []byte{0xff, 0xff, 0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage response decoded")
	}
	for _, b := range [][]byte{nil, {0, 0}, {0, 0, 0, 1, 0x80}} {
		if _, _, err := DecodeResponseFrame(kmsg.Metadata.Int16(), 12, b); err == nil {
			t.Errorf("response frame %x decoded", b)
		}
	}
	if _, err := DecodeResponse(9999, 0, nil); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestRouteDoesNotAllocate(t *testing.T) {
	var seen []string
	c := mustChain(t,
		&fake{name: "a", seen: &seen, in: Interest{Requests: []Keys{AllVersions(kmsg.Produce)}}},
		&fake{name: "b", seen: &seen, in: Interest{Responses: []Keys{AllVersions(kmsg.Metadata), {Key: kmsg.Fetch, MinVersion: 16, MaxVersion: 20}}}},
	)
	n := 0
	allocs := testing.AllocsPerRun(1000, func() {
		for key := int16(0); key < 100; key++ {
			if r := c.Route(key, 12); r.Request() || r.Response() {
				n++
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Route allocates %.1f times per run", allocs)
	}
}

// TestAdmit: steps run in order; the first error stops admission and
// names its step.
func TestAdmit(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewClient(a, "broker:9092")
	if c.Principal != Anonymous || c.Broker != "broker:9092" {
		t.Fatalf("new client %+v", c)
	}
	var ran []string
	step := func(name string, err error) Step {
		return Step{Name: name, Run: func(_ context.Context, c *Client) error {
			ran = append(ran, name)
			c.Principal = "User:" + name
			return err
		}}
	}
	deny := errors.New("denied")
	err := Admit(context.Background(), []Step{step("tls", nil), step("ipfilter", deny), step("never", nil)}, c)
	if !errors.Is(err, deny) || err.Error() != "ipfilter: denied" || strings.Join(ran, ",") != "tls,ipfilter" {
		t.Errorf("err %v, ran %v", err, ran)
	}
	if c.Principal != "User:ipfilter" {
		t.Errorf("principal %q", c.Principal)
	}
	if err := Admit(context.Background(), nil, c); err != nil {
		t.Error(err)
	}
}

// TestTagBombs: a tag count the bytes cannot hold costs nothing, in
// request and response headers (read here) and in the body of every
// request and response at every flexible version kmsg knows (read by
// kmsg, which older versions looped over once per declared tag). The
// body's last tag section is its top-level one.
func TestTagBombs(t *testing.T) {
	bomb := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32-1 tags
	header := func(key, version int16) []byte {
		return []byte{byte(key >> 8), byte(key), byte(version >> 8), byte(version), 0, 0, 0, 1, 0, 1, 'c'}
	}
	start := time.Now()
	if _, err := DecodeRequest(append(header(36, 2), bomb...)); err == nil {
		t.Error("request header bomb decoded")
	}
	if _, _, err := DecodeResponseFrame(kmsg.SASLAuthenticate.Int16(), 2, append([]byte{0, 0, 0, 1}, bomb...)); err == nil {
		t.Error("response header bomb decoded")
	}
	checked := 0
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if !req.IsFlexible() {
				continue
			}
			f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, req, 1)
			f = append(f[4:len(f)-1], bomb...)
			if _, err := DecodeRequest(f); err == nil {
				t.Errorf("%s v%d request: body tag bomb decoded", kmsg.NameForKey(key), v)
			}
			resp := req.ResponseKind()
			resp.SetVersion(v)
			body := resp.AppendTo(nil)
			if _, err := DecodeResponse(key, v, append(body[:len(body)-1], bomb...)); err == nil {
				t.Errorf("%s v%d response: body tag bomb decoded", kmsg.NameForKey(key), v)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d flexible versions checked", checked)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%v to refuse %d tag bombs", d, 2*checked+2)
	}
}

// ReplaceAt forwards at another version; the answer, decoded at that
// version, goes back at the client's.
func TestReplaceAtVersion(t *testing.T) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 2
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 9)
	ex := NewExchange(&Client{}, req.Key(), 2, 9, frame)
	up := kmsg.NewPtrMetadataRequest()
	up.AllowAutoTopicCreation = false
	ex.ReplaceAt(up, 4)
	sent, err := DecodeRequest(ex.Frame()[4:])
	if err != nil || sent.GetVersion() != 4 || ex.SentVersion() != 4 {
		t.Fatalf("forwarded v%d (%v), SentVersion %d", sent.GetVersion(), err, ex.SentVersion())
	}
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version, resp.ClusterID = 4, kmsg.StringPtr("c")
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 1, "h", 9092
	resp.Brokers = append(resp.Brokers, b)
	chain, err := NewChain()
	if err != nil {
		t.Fatal(err)
	}
	back := NewExchange(&Client{}, req.Key(), 2, 9, nil)
	back.AnsweredAt(4)
	out, changed, err := chain.OnResponse(Route{}, back, resp.AppendTo(nil))
	if err != nil || !changed {
		t.Fatalf("OnResponse: changed %v, %v", changed, err)
	}
	got, err := DecodeResponse(req.Key(), 2, out)
	if err != nil || got.(*kmsg.MetadataResponse).Brokers[0].Host != "h" || got.(*kmsg.MetadataResponse).ClusterID == nil {
		t.Fatalf("answer at v2: %+v, %v", got, err)
	}
}
