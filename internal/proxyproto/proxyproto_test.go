package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

func v2(cmd, fam byte, addrs []byte, tlvs []byte) []byte {
	b := append([]byte{}, v2Signature...)
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+len(tlvs)))
	return append(append(b, addrs...), tlvs...)
}

func TestRead(t *testing.T) {
	v4 := append(append(net.IPv4(10, 1, 2, 3).To4(), net.IPv4(10, 0, 0, 1).To4()...), 0x30, 0x39, 0x23, 0x84)
	v6 := append(append(net.ParseIP("2001:db8::7").To16(), net.ParseIP("2001:db8::1").To16()...), 0x30, 0x39, 0x23, 0x84)
	for _, tc := range []struct {
		name string
		in   []byte
		src  string
	}{
		{"v1 tcp4", []byte("PROXY TCP4 10.1.2.3 10.0.0.1 12345 9092\r\n"), "10.1.2.3:12345"},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 12345 9092\r\n"), "[2001:db8::7]:12345"},
		{"v1 unknown", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), ""},
		{"v2 tcp4", v2(1, 0x11, v4, nil), "10.1.2.3:12345"},
		{"v2 tcp6 with TLVs", v2(1, 0x21, v6, []byte{0x01, 0x00, 0x02, 'h', '2'}), "[2001:db8::7]:12345"},
		{"v2 local", v2(0, 0x00, nil, nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(append(tc.in, 0, 0, 0, 9)) // a Kafka frame follows
			h, err := Read(r)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if h.Source != nil {
				got = h.Source.String()
			}
			if got != tc.src {
				t.Fatalf("source %q, want %q", got, tc.src)
			}
			rest, _ := io.ReadAll(r)
			if !bytes.Equal(rest, []byte{0, 0, 0, 9}) {
				t.Fatalf("the bytes after the header were consumed: %v left", rest)
			}
		})
	}
}

func TestReadMalformed(t *testing.T) {
	v4 := make([]byte, 12)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"kafka bytes", []byte{0, 0, 0, 10}},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n")},
		{"v1 no CRLF", []byte("PROXY TCP4 1.2.3.4 1.2.3.4 1 2")},
		{"v1 bad family", []byte("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n")},
		{"v1 six in four", []byte("PROXY TCP4 ::1 ::1 1 2\r\n")},
		{"v1 port", []byte("PROXY TCP4 1.2.3.4 1.2.3.4 70000 2\r\n")},
		{"v1 fields", []byte("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n")},
		{"v2 signature", append([]byte("\r\n\r\n\x00\r\nQUIT!"), 0x21, 0x11, 0, 0)},
		{"v2 version", func() []byte { b := v2(1, 0x11, v4, nil); b[12] = 0x31; return b }()},
		{"v2 udp", v2(1, 0x12, v4, nil)},
		{"v2 short addresses", v2(1, 0x11, v4[:6], nil)},
		{"v2 huge length", append(append([]byte{}, v2Signature...), 0x21, 0x11, 0xff, 0xff)},
		{"v2 truncated", v2(1, 0x11, v4, nil)[:20]},
	} {
		if _, err := Read(bytes.NewReader(tc.in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 10.1.2.3 10.0.0.1 12345 9092\r\n"))
	f.Add(v2(1, 0x11, make([]byte, 12), nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := Read(r)
		if err == nil && h.Source != nil && h.Dest == nil {
			t.Fatal("a source without a destination")
		}
		if consumed := len(in) - r.Len(); consumed > 16+v2MaxAddrData {
			t.Fatalf("read %d bytes", consumed)
		}
	})
}
