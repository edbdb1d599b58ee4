package proxyproto

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// peekByte reads the connection's first byte without consuming it
// (MSG_PEEK), waiting for it under the connection's read deadline.
func peekByte(c net.Conn) (byte, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("optional PROXY protocol needs a TCP socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var b [1]byte
	var n int
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
			if perr != syscall.EINTR {
				return perr != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case perr != nil:
		return 0, perr
	case n == 0:
		return 0, io.EOF
	}
	return b[0], nil
}
