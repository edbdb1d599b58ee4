//go:build !linux

package proxyproto

import (
	"errors"
	"net"
)

// peekByte needs MSG_PEEK on Linux; elsewhere optional mode is refused
// (use required).
func peekByte(net.Conn) (byte, error) {
	return 0, errors.New("--proxy-listener-proxy-protocol optional is supported on Linux only; use required")
}
