package wire

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func prefix(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func TestCheckSize(t *testing.T) {
	cases := []struct {
		name       string
		size       uint32
		min, limit int
		want       int
		err        error
	}{
		{"zero below min", 0, 10, 100, 0, ErrFrameTooSmall},
		{"one below min", 9, 10, 100, 0, ErrFrameTooSmall},
		{"exactly min", 10, 10, 100, 10, nil},
		{"exactly limit", 100, 10, 100, 100, nil},
		{"one above limit", 101, 10, 100, 0, ErrFrameTooLarge},
		{"max int32 above limit", math.MaxInt32, 10, 100, 0, ErrFrameTooLarge},
		{"max int32 at max limit", math.MaxInt32, 10, math.MaxInt32, math.MaxInt32, nil},
		{"minus one", 0xffffffff, 0, math.MaxInt32, 0, ErrNegativeSize},
		{"min int32", 0x80000000, 0, math.MaxInt32, 0, ErrNegativeSize},
		// A limit above what a frame can say still rejects negatives.
		{"negative with huge limit", 0xfffffff0, 0, math.MaxInt, 0, ErrNegativeSize},
		{"zero min zero size", 0, 0, 100, 0, nil},
		{"limit below min", 5, 10, 4, 0, ErrFrameTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CheckSize(prefix(c.size), c.min, c.limit)
			if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
				t.Fatalf("CheckSize(%d, %d, %d) error = %v, want %v", int32(c.size), c.min, c.limit, err, c.err)
			}
			if got != c.want {
				t.Fatalf("CheckSize(%d, %d, %d) = %d, want %d", int32(c.size), c.min, c.limit, got, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), "bytes") && c.err != ErrNegativeSize {
				t.Errorf("error %q does not name the sizes", err)
			}
		})
	}
}

// CheckSize reads only the first four bytes: a longer slice (a peeked
// header) gives the same answer.
func TestCheckSizeIgnoresTrailingBytes(t *testing.T) {
	b := append(prefix(50), 0xff, 0xff, 0xff, 0xff)
	if n, err := CheckSize(b, 10, 100); n != 50 || err != nil {
		t.Fatalf("CheckSize = %d, %v; want 50, nil", n, err)
	}
}

func TestCheckSizeDoesNotAllocate(t *testing.T) {
	b := prefix(64)
	if a := testing.AllocsPerRun(100, func() { _, _ = CheckSize(b, 10, 1<<20) }); a != 0 {
		t.Fatalf("CheckSize allocates %v times per valid frame", a)
	}
}

func FuzzCheckSize(f *testing.F) {
	for _, s := range []uint32{0, 9, 10, 100, 101, math.MaxInt32, 0x80000000, 0xffffffff} {
		f.Add(prefix(s), 10, 100)
	}
	f.Fuzz(func(t *testing.T, b []byte, min, limit int) {
		if len(b) < 4 {
			return
		}
		n, err := CheckSize(b, min, limit)
		size := int64(int32(binary.BigEndian.Uint32(b)))
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with size %d", err, n)
			}
			ok := size < 0 || size > int64(limit) || size < int64(min)
			if !ok {
				t.Fatalf("size %d rejected with min %d limit %d: %v", size, min, limit, err)
			}
			return
		}
		if int64(n) != size || n < 0 || n < min || n > limit {
			t.Fatalf("CheckSize(%d, %d, %d) = %d", size, min, limit, n)
		}
	})
}

// clientHello captures the first bytes a real crypto/tls client sends.
func clientHello(t *testing.T, maxVersion uint16) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		tc := tls.Client(c, &tls.Config{ServerName: "kafka", MaxVersion: maxVersion, InsecureSkipVerify: true})
		_ = tc.Handshake() // fails once s is closed
		_ = c.Close()
	}()
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 16)
	if _, err := io.ReadFull(s, b); err != nil {
		t.Fatalf("read ClientHello: %v", err)
	}
	return b
}

func TestForeignProtocol(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if got := ForeignProtocol(clientHello(t, v)); !strings.HasPrefix(got, "TLS") {
			t.Errorf("ClientHello (max version %x) = %q, want TLS", v, got)
		}
	}
	// Older clients announce SSL 3.0 to TLS 1.3 in the record header.
	for minor := byte(0); minor <= 4; minor++ {
		if got := ForeignProtocol([]byte{0x16, 0x03, minor, 0x00, 0x2f}); !strings.HasPrefix(got, "TLS") {
			t.Errorf("handshake record 3.%d = %q, want TLS", minor, got)
		}
	}
	for _, verb := range []string{"GET / HTTP/1.1\r\n", "POST /x", "HEAD /", "PUT /a", "DELETE /", "OPTIONS *", "PATCH /", "CONNECT host:1", "PRI * HTTP/2.0"} {
		if got := ForeignProtocol([]byte(verb)); !strings.HasPrefix(got, "HTTP") {
			t.Errorf("%q = %q, want HTTP", verb, got)
		}
	}
	if got := ForeignProtocol([]byte("SSH-2.0-OpenSSH_9.6")); got != "SSH" {
		t.Errorf("SSH banner = %q", got)
	}
	// Too short to tell, or merely similar: may be Kafka.
	for _, b := range [][]byte{nil, {0x16}, {0x16, 0x03}, {0x16, 0x03, 0x05}, []byte("GE"), []byte("GETX"), []byte("get ")} {
		if got := ForeignProtocol(b); got != "" {
			t.Errorf("%q = %q, want \"\"", b, got)
		}
	}
}

// Real Kafka frames are never taken for another protocol, whatever their
// header: the size prefix of any frame below 256 MiB starts with a byte no
// other protocol's first byte matches.
func TestForeignProtocolKafkaFrames(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("GET / HTTP/1.1"))
	for v := int16(0); v <= kmsg.NewPtrApiVersionsRequest().MaxVersion(); v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "kafka-proxy", "1.0"
		frame := f.AppendRequest(nil, req, 0x16030100)
		if got := ForeignProtocol(frame); got != "" {
			t.Errorf("ApiVersions v%d frame %x = %q", v, frame[:12], got)
		}
	}
	for _, size := range []uint32{0, 10, 1 << 20, 100 << 20, 256<<20 - 1} {
		b := append(prefix(size), "GET /"...)
		if got := ForeignProtocol(b); got != "" {
			t.Errorf("frame of %d bytes = %q", size, got)
		}
	}
}
