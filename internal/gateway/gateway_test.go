package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func verifyEquals(want string) Verifier {
	return func(_ context.Context, tok string) error {
		if tok != want {
			return errors.New("not the token")
		}
		return nil
	}
}

// TestHandshake: the client's handshake is accepted when magic, method and
// token match, and refused (closed unanswered) when any does not.
func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name          string
		magic         uint64
		method, token string
		ok            bool
	}{
		{"match", 42, "google-id", "tok", true},
		{"magic", 43, "google-id", "tok", false},
		{"method", 42, "other", "tok", false},
		{"token", 42, "google-id", "forged", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, srv := pair(t)
			done := make(chan error, 1)
			go func() {
				err := Accept(context.Background(), srv, 42, "google-id", verifyEquals("tok"), time.Second)
				if err != nil {
					srv.Close() // what the server does on a refusal
				}
				done <- err
			}()
			err := Handshake(cl, tc.magic, tc.method, tc.token, time.Second)
			serr := <-done
			if tc.ok != (err == nil) || tc.ok != (serr == nil) {
				t.Fatalf("client %v, server %v; want accepted %v", err, serr, tc.ok)
			}
			if !tc.ok && (!errors.Is(err, ErrRefused) || !errors.Is(serr, ErrRefused)) {
				t.Errorf("refusal not marked: client %v, server %v", err, serr)
			}
			if serr != nil && strings.Contains(serr.Error(), "forged") {
				t.Errorf("the token reached the error: %v", serr)
			}
		})
	}
}

// TestReadRequestBounds: a length over MaxPayload is refused before
// anything is allocated; short input is an error, not a hang.
func TestReadRequestBounds(t *testing.T) {
	var head [12]byte
	binary.BigEndian.PutUint32(head[8:], MaxPayload+1)
	if _, err := ReadRequest(bytes.NewReader(head[:])); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized: %v", err)
	}
	if _, err := ReadRequest(bytes.NewReader(head[:5])); err == nil {
		t.Error("short header accepted")
	}
	binary.BigEndian.PutUint32(head[8:], 3)
	if _, err := ReadRequest(bytes.NewReader(append(head[:], "abc"...))); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("no NUL: %v", err)
	}
}

// TestAcceptTimeout: a peer that sends nothing is dropped at the timeout.
func TestAcceptTimeout(t *testing.T) {
	_, srv := pair(t)
	start := time.Now()
	if err := Accept(context.Background(), srv, 1, "m", verifyEquals("t"), 100*time.Millisecond); err == nil {
		t.Fatal("accepted nothing")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func FuzzReadRequest(f *testing.F) {
	var msg bytes.Buffer
	_ = binary.Write(&msg, binary.BigEndian, uint64(7))
	_ = binary.Write(&msg, binary.BigEndian, uint32(5))
	msg.WriteString("m\x00tok")
	f.Add(msg.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(req.Method)+1+len(req.Token) > MaxPayload || len(data) < 12+len(req.Method)+1+len(req.Token) {
			t.Fatalf("accepted %d bytes as %+v", len(data), req)
		}
	})
}

// TestWireFormat: both sides against bytes built by hand from the
// documented format (not with this package's own encoder): 8 bytes of
// magic and 4 of length, big endian, then method NUL token; four zero
// bytes back.
func TestWireFormat(t *testing.T) {
	want := []byte{
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x39, // magic 12345
		0x00, 0x00, 0x00, 0x0a, // length 10
		'g', 'o', 'o', 'g', 'l', 'e', 0x00, 't', 'o', 'k',
	}
	cl, srv := pair(t)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(want))
		_, _ = io.ReadFull(srv, b)
		got <- b
		_, _ = srv.Write([]byte{0, 0, 0, 0})
	}()
	if err := Handshake(cl, 12345, "google", "tok", time.Second); err != nil {
		t.Fatalf("client against a hand-built server: %v", err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client sent % x, want % x", b, want)
	}

	cl, srv = pair(t)
	done := make(chan error, 1)
	go func() { done <- Accept(context.Background(), srv, 12345, "google", verifyEquals("tok"), time.Second) }()
	if _, err := cl.Write(want); err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, 4)
	if _, err := io.ReadFull(cl, answer); err != nil || !bytes.Equal(answer, []byte{0, 0, 0, 0}) {
		t.Fatalf("server answered % x (%v), want four zero bytes", answer, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}
