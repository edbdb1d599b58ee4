package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsRequest is a complete ApiVersions v0 request frame: the
// smallest request every broker answers, enough to make a proxy dial its
// broker and establish the session.
func apiVersionsRequest(corr int32) []byte {
	const clientID = "bench-idle"
	body := binary.BigEndian.AppendUint16(nil, 18) // api key
	body = binary.BigEndian.AppendUint16(body, 0)  // version
	body = binary.BigEndian.AppendUint32(body, uint32(corr))
	body = binary.BigEndian.AppendUint16(body, uint16(len(clientID)))
	body = append(body, clientID...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// produceRequest is a Produce v7 frame (acks=1) carrying one record of
// valueBytes to partition 0 of the produce topic: traffic of the size a
// producer sends, so that an idle connection measured after it is in the
// state idle connections are in after carrying data. The broker may answer
// NOT_LEADER (partition 0 may live elsewhere); the frame passed anyway.
func produceRequest(corr int32, valueBytes int) []byte {
	rec := kmsg.Record{Value: make([]byte, valueBytes)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // bytes after the length varint
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, 1, 10000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = produceTopic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = raw
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench-idle")).AppendRequest(nil, req, corr)
}

// produceRoundTrip sends one produceRequest and reads the response.
func produceRoundTrip(c net.Conn, corr int32, valueBytes int) error {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(produceRequest(corr, valueBytes)); err != nil {
		return err
	}
	var head [8]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return err
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if size < 4 || size > 1<<20 {
		return fmt.Errorf("produce response size %d", size)
	}
	if got := int32(binary.BigEndian.Uint32(head[4:8])); got != corr {
		return fmt.Errorf("produce response correlation id %d, want %d", got, corr)
	}
	_, err := io.CopyN(io.Discard, c, int64(size-4))
	return err
}

// each runs fn on every connection, par at a time; the first error wins.
func each(conns []net.Conn, par int, fn func(i int, c net.Conn) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := 0; w < min(par, len(conns)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) {
					return
				}
				if err := fn(i, conns[i]); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// roundTrip sends ApiVersions on c and checks the answer's correlation id
// and error code.
func roundTrip(c net.Conn, corr int32) error {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(apiVersionsRequest(corr)); err != nil {
		return err
	}
	var head [10]byte // size, correlation id, error code
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return err
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if size < 6 || size > 1<<20 {
		return fmt.Errorf("api versions response size %d", size)
	}
	if got := int32(binary.BigEndian.Uint32(head[4:8])); got != corr {
		return fmt.Errorf("api versions response correlation id %d, want %d", got, corr)
	}
	if code := int16(binary.BigEndian.Uint16(head[8:10])); code != 0 {
		return fmt.Errorf("api versions error code %d", code)
	}
	_, err := io.CopyN(io.Discard, c, int64(size-6))
	return err
}

// openConns opens n connections to addr, each completing one ApiVersions
// round trip, par at a time. On error it closes what it opened.
func openConns(addr string, n, par int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var (
		next     atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	for w := 0; w < min(par, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 20*time.Second)
				if err == nil {
					if err = roundTrip(c, int32(i)); err != nil {
						_ = c.Close()
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					next.Store(int64(n)) // stop the other workers
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeConns(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeConns(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// trafficBytes is the record size of the one Produce each idle connection
// sends before the after-traffic reading.
const trafficBytes = 16 << 10

// Idle is the memory an idle proxied connection costs the middle.
type Idle struct {
	Conns       int
	RSSBefore   int64   // bytes, with one connection established
	RSSAfter    int64   // bytes, with Conns more established (one ApiVersions each) and idle
	PerConnByte float64 // (RSSAfter-RSSBefore)/Conns
	// After each connection also carried one 16 KiB Produce and went idle
	// again: the state of most idle connections in production.
	RSSAfterTraffic     int64
	PerConnAfterTraffic float64
}

// measureIdle opens one connection (the process is then fully set up),
// reads the middle's RSS, opens n more, lets them sit, and reads it again;
// then every connection carries one Produce, and it reads it a third time.
func measureIdle(mid *child, addr string, n int) (Idle, error) {
	first, err := openConns(addr, 1, 1)
	if err != nil {
		return Idle{}, err
	}
	defer closeConns(first)
	time.Sleep(200 * time.Millisecond)
	before := mid.rss()
	conns, err := openConns(addr, n, 64)
	if err != nil {
		return Idle{}, err
	}
	defer closeConns(conns)
	time.Sleep(500 * time.Millisecond) // idle: let the process settle
	after := mid.rss()
	if before == 0 || after == 0 {
		return Idle{}, errors.New("cannot read the middle's RSS from /proc")
	}
	idle := Idle{Conns: n, RSSBefore: before, RSSAfter: after, PerConnByte: float64(after-before) / float64(n)}
	if err := each(conns, 64, func(i int, c net.Conn) error { return produceRoundTrip(c, int32(n+i), trafficBytes) }); err != nil {
		return idle, fmt.Errorf("produce on idle connections: %w", err)
	}
	time.Sleep(500 * time.Millisecond)
	idle.RSSAfterTraffic = mid.rss()
	idle.PerConnAfterTraffic = float64(idle.RSSAfterTraffic-before) / float64(n)
	return idle, nil
}

// Hold is the concurrent-connection check.
type Hold struct {
	Wanted      int           // connections asked for
	Conns       int           // connections tried: Wanted, or fewer if the descriptor limit forbids
	CappedBy    string        `json:",omitempty"` // why Conns < Wanted
	Held        int           // connections that answered a second request after the hold
	OpenTime    time.Duration // to open and establish all of them
	RSSPerConn  float64       // bytes
	MiddleFDs   int           // descriptors the middle had open at the peak
	HoldPeriod  time.Duration
	FailureNote string `json:",omitempty"`
}

// holdConns opens n proxied connections at once, keeps them open for d,
// then checks every one still answers.
func holdConns(mid *child, addr string, n int, d time.Duration) Hold {
	h := Hold{Wanted: n, Conns: n, HoldPeriod: d}
	// The middle needs two descriptors per connection (client and broker
	// side). A limit that cannot hold them is the environment's, not the
	// middle's: test as many as fit and say so.
	if limit := fdLimit(mid.pid()); limit > 0 {
		if fit := (limit - countFDs(mid.pid()) - 32) / 2; fit < n {
			h.Conns = max(fit, 1)
			h.CappedBy = fmt.Sprintf("%s's RLIMIT_NOFILE is %d (2 descriptors per proxied connection) and this environment does not allow raising it", mid.name, limit)
			n = h.Conns
		}
	}
	base := mid.rss()
	start := time.Now()
	conns, err := openConns(addr, n, 128)
	h.OpenTime = time.Since(start)
	if err != nil {
		h.FailureNote = err.Error()
		if tail := lastLines(mid.stderr.String(), 5); tail != "" {
			h.FailureNote += "; " + mid.name + " said: " + tail
		}
		return h
	}
	defer closeConns(conns)
	time.Sleep(d)
	h.RSSPerConn = float64(mid.rss()-base) / float64(n)
	h.MiddleFDs = countFDs(mid.pid())
	var held atomic.Int64
	var noteOnce sync.Once
	_ = each(conns, 64, func(i int, c net.Conn) error {
		if err := roundTrip(c, int32(n+i)); err != nil {
			noteOnce.Do(func() { h.FailureNote = fmt.Sprintf("connection %d after hold: %v", i, err) })
			return nil // count the rest
		}
		held.Add(1)
		return nil
	})
	h.Held = int(held.Load())
	return h
}

// fdLimit is a process's soft RLIMIT_NOFILE, 0 if unknown.
func fdLimit(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

func countFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(es)
}

// lastLines is the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}
