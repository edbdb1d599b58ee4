// Package wire reads and writes Kafka frames: the 4-byte size prefix, the
// request and response headers, and bounded copies of bodies the proxy does
// not need to look at.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors for frames that must close the connection.
var (
	ErrNegativeSize  = errors.New("negative frame size")
	ErrFrameTooLarge = errors.New("frame size above limit")
	ErrFrameTooSmall = errors.New("frame too small for a header")
)

// CheckSize validates a frame's size prefix against limit before anything
// is allocated for it. min is the smallest body that can hold a header.
func CheckSize(prefix []byte, min, limit int) (int, error) {
	n := int32(binary.BigEndian.Uint32(prefix))
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: %d", ErrNegativeSize, n)
	case int64(n) > int64(limit):
		return 0, fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, n, limit)
	case int(n) < min:
		return 0, fmt.Errorf("%w: %d < %d bytes", ErrFrameTooSmall, n, min)
	}
	return int(n), nil
}

// ForeignProtocol recognises the first bytes of a connection that is not
// Kafka, so the log can say what the client really spoke instead of
// reporting a nonsense frame size or API key. It returns "" for anything
// that may be Kafka.
func ForeignProtocol(first []byte) string {
	if len(first) >= 3 && first[0] == 0x16 && first[1] == 0x03 && first[2] <= 0x04 {
		return "TLS (a TLS ClientHello on a plaintext listener: the client has TLS enabled but this listener does not)"
	}
	if len(first) >= 4 {
		switch string(first[:4]) {
		case "GET ", "POST", "HEAD", "PUT ", "DELE", "OPTI", "PATC", "CONN", "PRI ":
			return "HTTP (an HTTP request on a Kafka listener)"
		case "SSH-":
			return "SSH"
		}
	}
	return ""
}
