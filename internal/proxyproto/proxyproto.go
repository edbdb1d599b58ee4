// Package proxyproto reads the PROXY protocol header (v1 text, v2 binary)
// a load balancer such as HAProxy puts before a client's bytes, so that
// filters, ACL hosts, logs and the audit see the real client. The header
// is consumed from the socket itself: the connection stays a bare TCP
// socket the session can splice.
package proxyproto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/connfilter"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// Mode says whether listeners expect a header.
type Mode string

const (
	Off      Mode = "off"
	Optional Mode = "optional" // a header if the peer sends one
	Required Mode = "required" // every connection starts with one
)

// v2Signature starts every v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	v1MaxLen      = 107 // the longest v1 line, CRLF included (the spec's bound)
	v2MaxAddrData = 4096
	headerTimeout = 10 * time.Second
)

// ErrMalformed wraps every problem with a header.
var ErrMalformed = errors.New("malformed PROXY protocol header")

// Header is what a header says about the connection.
type Header struct {
	Source, Dest net.Addr // nil for LOCAL (v2) and UNKNOWN (v1): the peer speaks for itself
}

// Read reads one header from r: v1 ("PROXY TCP4 …\r\n") or v2. It reads
// exactly the header's bytes, one at a time for v1, so nothing after it
// is consumed.
func Read(r io.Reader) (Header, error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return Header{}, err
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case '\r':
		return readV2(r)
	}
	return Header{}, fmt.Errorf("%w: starts with 0x%02x", ErrMalformed, first[0])
}

func readV1(r io.Reader) (Header, error) {
	line := []byte{'P'}
	var b [1]byte
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) >= v1MaxLen {
			return Header{}, fmt.Errorf("%w: v1 line longer than %d bytes", ErrMalformed, v1MaxLen)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		line = append(line, b[0])
	}
	f := strings.Split(strings.TrimSuffix(string(line), "\r\n"), " ")
	if f[0] != "PROXY" || len(f) < 2 {
		return Header{}, fmt.Errorf("%w: %q", ErrMalformed, line)
	}
	if f[1] == "UNKNOWN" {
		return Header{}, nil
	}
	if (f[1] != "TCP4" && f[1] != "TCP6") || len(f) != 6 {
		return Header{}, fmt.Errorf("%w: %q", ErrMalformed, line)
	}
	src, err := v1Addr(f[2], f[4], f[1] == "TCP6")
	if err != nil {
		return Header{}, err
	}
	dst, err := v1Addr(f[3], f[5], f[1] == "TCP6")
	if err != nil {
		return Header{}, err
	}
	return Header{Source: src, Dest: dst}, nil
}

func v1Addr(ip, port string, six bool) (net.Addr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is6() != six {
		return nil, fmt.Errorf("%w: address %q", ErrMalformed, ip)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (len(port) > 1 && port[0] == '0') {
		return nil, fmt.Errorf("%w: port %q", ErrMalformed, port)
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(p))), nil
}

func readV2(r io.Reader) (Header, error) {
	var head [16]byte
	head[0] = '\r'
	if _, err := io.ReadFull(r, head[1:]); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(head[:12], v2Signature) {
		return Header{}, fmt.Errorf("%w: bad v2 signature", ErrMalformed)
	}
	if head[12]>>4 != 2 {
		return Header{}, fmt.Errorf("%w: version %d", ErrMalformed, head[12]>>4)
	}
	cmd, fam := head[12]&0x0f, head[13]
	n := int(binary.BigEndian.Uint16(head[14:]))
	if n > v2MaxAddrData {
		return Header{}, fmt.Errorf("%w: %d bytes of addresses and TLVs (at most %d)", ErrMalformed, n, v2MaxAddrData)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch cmd {
	case 0: // LOCAL: the balancer's own connection (health checks)
		return Header{}, nil
	case 1: // PROXY
	default:
		return Header{}, fmt.Errorf("%w: command %d", ErrMalformed, cmd)
	}
	var ipLen int
	switch fam {
	case 0x11: // TCP over IPv4
		ipLen = 4
	case 0x21: // TCP over IPv6
		ipLen = 16
	case 0x00: // UNSPEC
		return Header{}, nil
	default:
		return Header{}, fmt.Errorf("%w: address family 0x%02x is not TCP", ErrMalformed, fam)
	}
	if len(data) < 2*ipLen+4 {
		return Header{}, fmt.Errorf("%w: %d bytes for %d-byte addresses", ErrMalformed, len(data), ipLen)
	}
	src, _ := netip.AddrFromSlice(data[:ipLen])
	dst, _ := netip.AddrFromSlice(data[ipLen : 2*ipLen])
	ports := data[2*ipLen:]
	return Header{
		Source: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, binary.BigEndian.Uint16(ports))),
		Dest:   net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, binary.BigEndian.Uint16(ports[2:]))),
	}, nil // TLVs after the addresses are read and ignored
}

// Step is the admission step for mode. Only peers in trusted (all, if
// empty) may send a header; a header from another peer is refused, as is
// a connection without one when it is required.
func Step(mode Mode, trusted []netip.Prefix) pipeline.Step {
	return pipeline.Step{Name: "proxy-protocol", Run: func(_ context.Context, c *pipeline.Client) error {
		_ = c.Conn.SetReadDeadline(time.Now().Add(headerTimeout))
		defer c.Conn.SetReadDeadline(time.Time{})
		has := true
		if mode == Optional {
			b, err := peekByte(c.Conn)
			if err != nil {
				return fmt.Errorf("waiting for the first byte: %w", err)
			}
			has = b == 'P' || b == '\r' // a Kafka frame starts with its size's high byte, 0x00
		}
		if !has {
			return nil
		}
		if len(trusted) > 0 && !connfilter.Contains(trusted, c.Remote) {
			return fmt.Errorf("PROXY protocol header from %s, which is not a trusted balancer (--proxy-listener-proxy-protocol-trusted-cidr)", c.Remote)
		}
		h, err := Read(c.Conn)
		if err != nil {
			return err
		}
		if h.Source != nil {
			c.Remote = h.Source
		}
		return nil
	}}
}
