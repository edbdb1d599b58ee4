package clientauth

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/users"
)

func testGate(t testing.TB) *Gate {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.yaml")
	u, err := users.NewUser("alice", "alice-secret", users.AllKinds, auth.MinScramIterations, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.WriteFile(path, map[string]users.User{"alice": u}); err != nil {
		t.Fatal(err)
	}
	g, err := New(config.LocalAuth{Enable: true, Mechanisms: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, UsersFile: path}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// brokerVersions stands for the broker's ApiVersions answer.
func brokerVersions(_ context.Context, req *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(req.GetVersion())
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 0, MaxVersion: 11}, {ApiKey: 17, MaxVersion: 1}, {ApiKey: 18, MaxVersion: 4}}
	return resp, nil
}

// run authenticates the server end of a pipe while client talks on the
// other end; it returns Authenticate's result.
func run(t testing.TB, g *Gate, client func(c net.Conn)) (*pipeline.Client, error) {
	t.Helper()
	srvEnd, cliEnd := net.Pipe()
	defer srvEnd.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cliEnd.Close()
		client(cliEnd)
	}()
	c := pipeline.NewClient(srvEnd, "broker:9092")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := g.Authenticate(ctx, c, nil, brokerVersions)
	srvEnd.Close()
	<-done
	return c, err
}

func frame(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, corr)
}

func readResp(t testing.TB, c net.Conn, resp kmsg.Response) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Errorf("read response: %v", err)
		return
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Errorf("read response: %v", err)
		return
	}
	_, r, err := pipeline.DecodeResponseFrame(resp.Key(), resp.GetVersion(), b)
	if err != nil {
		t.Errorf("decode: %v", err)
		return
	}
	switch dst := resp.(type) {
	case *kmsg.SASLHandshakeResponse:
		*dst = *r.(*kmsg.SASLHandshakeResponse)
	case *kmsg.SASLAuthenticateResponse:
		*dst = *r.(*kmsg.SASLAuthenticateResponse)
	case *kmsg.ApiVersionsResponse:
		*dst = *r.(*kmsg.ApiVersionsResponse)
	}
}

func TestPlainV1AndWrongPassword(t *testing.T) {
	g := testGate(t)
	for _, tc := range []struct {
		password string
		ok       bool
	}{{"alice-secret", true}, {"wrong", false}} {
		var auResp kmsg.SASLAuthenticateResponse
		c, err := run(t, g, func(c net.Conn) {
			_, _ = c.Write(frame(&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "t", ClientSoftwareVersion: "1"}, 1))
			av := kmsg.ApiVersionsResponse{Version: 3}
			readResp(t, c, &av)
			_, _ = c.Write(frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}, 2))
			readResp(t, c, &kmsg.SASLHandshakeResponse{Version: 1})
			_, _ = c.Write(frame(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: []byte("\x00alice\x00" + tc.password)}, 3))
			auResp.Version = 2
			readResp(t, c, &auResp)
		})
		if tc.ok {
			if err != nil || c.Principal != "User:alice" || c.SASL == nil {
				t.Errorf("right password: %v, principal %q", err, c.Principal)
			}
			continue
		}
		if !errors.Is(err, ErrFailed) || auResp.ErrorCode != kerr.SaslAuthenticationFailed.Code || auResp.ErrorMessage == nil {
			t.Errorf("wrong password: err %v, response %+v", err, auResp)
		}
		if c.Principal != pipeline.Anonymous {
			t.Errorf("wrong password: principal %q", c.Principal)
		}
	}
}

func TestRawTokenFlow(t *testing.T) {
	g := testGate(t)
	c, err := run(t, g, func(c net.Conn) {
		_, _ = c.Write(frame(&kmsg.SASLHandshakeRequest{Version: 0, Mechanism: "PLAIN"}, 1))
		readResp(t, c, &kmsg.SASLHandshakeResponse{Version: 0})
		tok := []byte("\x00alice\x00alice-secret")
		_, _ = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...))
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
			t.Errorf("raw reply: %v %v", err, size)
		}
	})
	if err != nil || c.Principal != "User:alice" {
		t.Fatalf("raw PLAIN: %v, principal %q", err, c.Principal)
	}
}

// TestBadInput: each closes only this connection, with an error, and
// without reading what it does not need.
func TestBadInput(t *testing.T) {
	g := testGate(t)
	handshakeV0 := frame(&kmsg.SASLHandshakeRequest{Version: 0, Mechanism: "PLAIN"}, 1)
	for name, input := range map[string][]byte{
		"oversized frame":     binary.BigEndian.AppendUint32(nil, MaxFrame+1),
		"negative size":       {0xff, 0xff, 0xff, 0xff},
		"tls hello":           {0x16, 0x03, 0x01, 0x00, 0x10},
		"short header":        {0, 0, 0, 2, 0, 1},
		"oversized raw token": append(append([]byte{}, handshakeV0...), binary.BigEndian.AppendUint32(nil, 1<<30)...),
		"metadata first":      frame(&kmsg.MetadataRequest{Version: 9}, 1),
		"unknown mechanism":   frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "GSSAPI"}, 1),
		"authenticate first":  frame(&kmsg.SASLAuthenticateRequest{Version: 1}, 1),
		"garbage after handshake": append(frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "SCRAM-SHA-256"}, 1),
			frame(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("garbage")}, 2)...),
		"eof": nil,
	} {
		_, err := run(t, g, func(c net.Conn) {
			go func() { _, _ = io.Copy(io.Discard, c) }()
			_, _ = c.Write(input)
		})
		if err == nil {
			t.Errorf("%s: authenticated", name)
		}
	}
}

func TestUnsupportedApiVersionsVersion(t *testing.T) {
	g := testGate(t)
	_, _ = run(t, g, func(c net.Conn) {
		f := frame(&kmsg.ApiVersionsRequest{Version: 0}, 7)
		f[7] = 99 // header version
		_, _ = c.Write(f)
		resp := kmsg.ApiVersionsResponse{Version: 0}
		readResp(t, c, &resp)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 {
			t.Errorf("ApiVersions v99: %+v", resp)
		}
	})
}

func TestAdvertiseSASL(t *testing.T) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 17, MinVersion: 1, MaxVersion: 1}, {ApiKey: 3, MaxVersion: 12}}
	advertiseSASL(resp)
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if got[17] != [2]int16{0, 1} || got[36] != [2]int16{0, 2} || got[3] != [2]int16{0, 12} {
		t.Errorf("advertised %v", got)
	}
}

// FuzzAuthenticate feeds arbitrary client bytes to the pre-authentication
// path: it must end (error or success) without a panic.
func FuzzAuthenticate(f *testing.F) {
	f.Add(frame(&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "a", ClientSoftwareVersion: "1"}, 1))
	f.Add(append(frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}, 1),
		frame(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00x")}, 2)...))
	f.Add(append(frame(&kmsg.SASLHandshakeRequest{Version: 0, Mechanism: "SCRAM-SHA-512"}, 1), 0, 0, 0, 5, 'n', ',', ',', 'n', '='))
	g := testGate(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		// Authenticate is bounded by run's 5 s; far beyond it is a finding
		// (kmsg's tag loops once were: see pipeline/tags.go).
		tm := time.AfterFunc(15*time.Second, func() { panic(fmt.Sprintf("authentication of %q hangs", input)) })
		defer tm.Stop()
		_, _ = run(t, g, func(c net.Conn) {
			go func() { _, _ = io.Copy(io.Discard, c) }()
			_, _ = c.Write(input)
		})
	})
}
