// Package gateway is the proxy-to-proxy authentication handshake of the
// proxy we replace (--auth-gateway-client-* and --auth-gateway-server-*):
// a client-side proxy proves itself to a server-side one with a token
// before any Kafka bytes. On the wire, client to server: the magic
// (uint64, big endian), the length N of what follows (uint32, big
// endian), then method, a NUL byte and the token; the server answers four
// zero bytes when it accepts, and closes the connection otherwise.
package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxPayload bounds method and token together: the proxy we replace reads
// any length a peer announces; this one refuses more than a token needs.
const MaxPayload = 64 << 10

// accepted is the server's answer to a good handshake.
var accepted = [4]byte{}

// ErrRefused marks a handshake the server side refused (the peer is not
// a proxy it trusts), as opposed to an I/O failure.
var ErrRefused = errors.New("gateway handshake refused")

// Handshake is the client side: it sends magic, method and token on conn
// and waits for the server's acceptance, all within timeout.
func Handshake(conn net.Conn, magic uint64, method, token string, timeout time.Duration) error {
	if len(method)+1+len(token) > MaxPayload {
		return fmt.Errorf("gateway token of %d bytes is larger than %d", len(token), MaxPayload)
	}
	if timeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(timeout))
		defer conn.SetDeadline(time.Time{})
	}
	msg := make([]byte, 12, 12+len(method)+1+len(token))
	binary.BigEndian.PutUint64(msg, magic)
	binary.BigEndian.PutUint32(msg[8:], uint32(len(method)+1+len(token)))
	msg = append(append(append(msg, method...), 0), token...)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("gateway handshake: send: %w", err)
	}
	var answer [4]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the server-side proxy closed the connection (wrong magic, method or token)", ErrRefused)
		}
		return fmt.Errorf("gateway handshake: answer: %w", err)
	}
	if answer != accepted {
		return fmt.Errorf("%w: the server-side proxy answered %x", ErrRefused, answer)
	}
	return nil
}

// Request is what a client-side proxy sent.
type Request struct {
	Magic  uint64
	Method string
	Token  string
}

// ReadRequest reads one handshake from r, bounding its length before
// allocating.
func ReadRequest(r io.Reader) (Request, error) {
	var head [12]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return Request{}, fmt.Errorf("gateway handshake header: %w", err)
	}
	n := binary.BigEndian.Uint32(head[8:])
	if n > MaxPayload {
		return Request{}, fmt.Errorf("gateway handshake of %d bytes is larger than %d", n, MaxPayload)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return Request{}, fmt.Errorf("gateway handshake payload: %w", err)
	}
	method, token, ok := bytes.Cut(payload, []byte{0})
	if !ok {
		return Request{}, errors.New("gateway handshake: no NUL between method and token")
	}
	return Request{Magic: binary.BigEndian.Uint64(head[:8]), Method: string(method), Token: string(token)}, nil
}

// Verifier decides whether a token is a trusted proxy's.
type Verifier func(ctx context.Context, token string) error

// Accept is the server side: it reads a handshake from conn within
// timeout, checks magic, then method, then the token, and answers with the
// acceptance. Any error means the connection must be closed unanswered.
// The error never holds the token.
func Accept(ctx context.Context, conn net.Conn, magic uint64, method string, verify Verifier, timeout time.Duration) error {
	if timeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(timeout))
		defer conn.SetDeadline(time.Time{})
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := ReadRequest(conn)
	if err != nil {
		return err
	}
	switch {
	case req.Magic != magic:
		return fmt.Errorf("%w: magic %d is not this gateway's", ErrRefused, req.Magic)
	case req.Method != method:
		return fmt.Errorf("%w: method %q is not %q", ErrRefused, truncate(req.Method), method)
	}
	if err := verify(ctx, req.Token); err != nil {
		return fmt.Errorf("%w: token: %v", ErrRefused, err)
	}
	if _, err := conn.Write(accepted[:]); err != nil {
		return fmt.Errorf("gateway handshake: answer: %w", err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
