package robustness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// badInput is one malformed connection: the bytes to send, whether to
// half-close afterwards (input whose fault only shows at EOF), and what
// the proxy's log reason must contain ("" for anything).
type badInput struct {
	kind      string
	data      []byte
	halfClose bool
	reason    string
}

const malformedMaxFrame = 1 << 20

// malformedInputs builds n bad connections over ten kinds, deterministic
// for a given seed.
func malformedInputs(n int, seed int64) []badInput {
	rng := rand.New(rand.NewSource(seed))
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	header := func(key, version int16, corr int32) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, uint32(corr))
		b = binary.BigEndian.AppendUint16(b, 1)
		return append(b, 'x')
	}
	meta := kmsg.NewMetadataRequest()
	meta.Version = 4
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("robust-topic")}}
	metaFrame := requestFrame(&meta, 1)
	// Keys kmsg knows and the proxy forwards without rewriting, for
	// versions above any the broker takes.
	plain := []int16{2, 8, 9, 11, 12, 13, 14, 19, 20, 22}

	var out []badInput
	for i := 0; i < n; i++ {
		j := i / 10
		var in badInput
		switch i % 10 {
		case 0:
			in = badInput{kind: "negative size", reason: "negative frame size",
				data: append(u32(uint32(-1-rng.Int31n(1<<30))), header(3, 1, int32(i))...)}
		case 1:
			in = badInput{kind: "oversized", reason: "frame size above limit",
				data: append(u32(uint32(malformedMaxFrame+1+rng.Intn(1<<30))), header(0, 9, int32(i))...)}
		case 2:
			size := j % 10 // below the 10-byte header minimum
			in = badInput{kind: "too small", reason: "frame too small",
				data: append(u32(uint32(size)), make([]byte, size)...)}
		case 3:
			// Truncated header: part of the size prefix, or the prefix
			// and up to 7 header bytes, then EOF.
			full := append(u32(50), header(3, 1, int32(i))...)
			cut := 1 + j%11
			in = badInput{kind: "truncated header", reason: "EOF", halfClose: true, data: full[:cut]}
		case 4:
			cut := len(metaFrame) - 1 - j%(len(metaFrame)-13)
			in = badInput{kind: "truncated body", reason: "EOF", halfClose: true, data: metaFrame[:cut]}
		case 5:
			g := make([]byte, 8+rng.Intn(56))
			rng.Read(g)
			in = badInput{kind: "garbage", halfClose: true, data: g}
		case 6:
			keys := []int16{-1, -32768, 999, 4242, 32767, int16(200 + j)}
			k := keys[j%len(keys)]
			body := append(header(k, 0, int32(i)), 1, 2, 3, 4)
			in = badInput{kind: "unknown key", reason: "response", data: withSize(body)}
		case 7:
			k := plain[j%len(plain)]
			v := []int16{99, -1, 32767, kmsg.RequestForKey(k).MaxVersion() + 1}[j%4]
			body := append(header(k, v, int32(i)), 0, 0, 0, 0)
			in = badInput{kind: "unknown version", reason: "response", data: withSize(body)}
		case 8:
			// Known key and version, undecodable body: a Metadata v4 whose
			// topic array claims more entries than there are bytes.
			body := append(header(3, 4, int32(i)), u32(uint32(1000+rng.Intn(1<<30)))...)
			in = badInput{kind: "corrupt body", reason: "response", data: withSize(body)}
		case 9:
			foreign := []struct{ data, reason string }{
				{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "client speaks TLS"},
				{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "client speaks HTTP"},
				{"POST /x HTTP/1.1\r\n\r\n", "client speaks HTTP"},
				{"SSH-2.0-OpenSSH_9.6\r\n", "client speaks SSH"},
			}[j%4]
			in = badInput{kind: "foreign protocol", reason: foreign.reason, data: []byte(foreign.data)}
		}
		out = append(out, in)
	}
	return out
}

// TestMalformedFrames sends 1,000 malformed inputs, each on its own
// connection, while a franz-go producer keeps producing through the same
// proxy. Every bad connection must be closed by the proxy and logged once
// with a reason naming its fault; the producer must see no error and keep
// making progress; every record it produced must read back exactly once;
// and the proxy must still serve new clients afterwards.
func TestMalformedFrames(t *testing.T) {
	c, p := setup(t, func(c *config.Config) { c.Proxy.MaxFrameSize = malformedMaxFrame })
	ctx := ctxT(t, 90*time.Second)
	const topic = "robust-malformed"
	good := proxyClient(t, p, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())

	// The good client: small synchronous produces, bounded in count.
	const maxGood = 20000
	var produced atomic.Int64
	stop := make(chan struct{})
	goodDone := make(chan error, 1)
	go func() {
		for i := 0; i < maxGood; i++ {
			select {
			case <-stop:
				goodDone <- nil
				return
			default:
			}
			r := &kgo.Record{Key: fmt.Appendf(nil, "g-%d", i), Value: []byte("ok")}
			if err := good.ProduceSync(ctx, r).FirstErr(); err != nil {
				goodDone <- fmt.Errorf("record %d: %w", i, err)
				return
			}
			produced.Add(1)
		}
		goodDone <- nil
	}()
	if !settle(10*time.Second, func() bool { return produced.Load() > 10 }) {
		t.Fatal("good producer made no progress before the test started")
	}

	const n = 1000
	inputs := malformedInputs(n, 1)
	addrs := p.Server.Listeners()
	local := make([]string, n)
	errs := make([]error, n)
	start := time.Now()
	before := produced.Load()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 25)
	for i := range inputs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			local[i], errs[i] = sendBad(addrs[i%len(addrs)].Addr.String(), inputs[i])
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	during := produced.Load() - before
	t.Logf("%d malformed connections in %v; the good producer acknowledged %d records meanwhile", n, elapsed.Round(time.Millisecond), during)

	// Every bad connection was closed by the proxy, not left hanging.
	bad := 0
	for i, err := range errs {
		if err != nil {
			if bad++; bad <= 10 {
				t.Errorf("connection %d (%s): %v", i, inputs[i].kind, err)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d malformed connections were not closed by the proxy", bad, n)
	}

	// Each one is logged once, as a warning, with its reason. A client
	// port can recur (per listener, and after TIME_WAIT), so lines are
	// matched per address as a multiset.
	byKey := map[string][]int{}
	for i, a := range local {
		k := a + ">" + addrs[i%len(addrs)].Addr.String()
		byKey[k] = append(byKey[k], i)
	}
	var logged map[string][]closedLine
	settle(10*time.Second, func() bool {
		logged = closedByRemote(p.Logs.String())
		for k, idx := range byKey {
			if len(logged[k]) < len(idx) {
				return false
			}
		}
		return true
	})
	problems := 0
	report := func(i int, format string, args ...any) {
		if problems++; problems <= 10 {
			in := inputs[i]
			t.Errorf("bad connection %d (%s, %q) from %s: %s", i, in.kind, in.data[:min(len(in.data), 16)], local[i], fmt.Sprintf(format, args...))
		}
	}
	for k, idx := range byKey {
		lines := logged[k]
		if len(lines) != len(idx) {
			report(idx[0], "%d connections from this address logged %d times", len(idx), len(lines))
			continue
		}
		used := make([]bool, len(lines))
	next:
		for _, i := range idx {
			for j, l := range lines {
				if !used[j] && l.level == "WARN" && l.reason != "" && strings.Contains(l.reason, inputs[i].reason) {
					used[j] = true
					continue next
				}
			}
			report(i, "no WARN line with a reason mentioning %q among %+v", inputs[i].reason, lines)
		}
	}
	if problems > 0 {
		t.Errorf("%d of %d bad connections not logged as required", problems, n)
	}
	// The unknown keys and versions reached the broker and its guard
	// closed them (so the proxy did forward them, as designed).
	if r := c.Rejected(); r < n/5 {
		t.Errorf("broker guard rejected %d connections, want at least %d (unknown keys and versions are forwarded)", r, n/5)
	}

	// The good client was unaffected: no error, progress meanwhile.
	time.Sleep(200 * time.Millisecond)
	close(stop)
	if err := <-goodDone; err != nil {
		t.Fatalf("good producer failed while bad connections were handled: %v", err)
	}
	if during == 0 {
		t.Errorf("good producer made no progress during the malformed storm")
	}

	// The proxy still serves a new client, and every good record is
	// readable through it exactly once.
	total := int(produced.Load())
	consumer := proxyClient(t, p, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for len(seen) < total && ctx.Err() == nil {
		fs := consumer.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)]++ })
	}
	for i := 0; i < total; i++ {
		if k := fmt.Sprintf("g-%d", i); seen[k] != 1 {
			t.Fatalf("good record %s read %d times through the proxy, want once (%d records produced)", k, seen[k], total)
		}
	}
	if len(seen) != total {
		t.Errorf("read %d distinct good records, produced %d", len(seen), total)
	}
}

// sendBad writes in on a new connection and waits for the proxy to close
// it; it returns the connection's local address.
func sendBad(addr string, in badInput) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	if _, err := conn.Write(in.data); err != nil {
		return local, fmt.Errorf("write: %w", err)
	}
	if in.halfClose {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return local, fmt.Errorf("still open after 10s (read %d bytes)", n)
	case n > 0:
		return local, fmt.Errorf("proxy answered %d bytes instead of closing", n)
	}
	return local, nil // EOF or reset: closed
}
