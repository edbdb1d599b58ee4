package memkafka

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// TestSASLHandshakeV0 checks the front's raw-token flow (SaslHandshake v0,
// then a length-prefixed PLAIN token with no request header), which old
// clients use: the right password is answered with an empty token and the
// connection then serves Kafka requests; a wrong one closes it unanswered,
// as Kafka does.
func TestSASLHandshakeV0(t *testing.T) {
	c, err := NewSecureCluster(t.TempDir(), SASLPlain, WithBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{{"right password", c.Password, true}, {"wrong password", "wrong", false}} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", c.Addrs[0], 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("v0-client"))
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 0, "PLAIN"
			resp := roundTrip(t, conn, f.AppendRequest(nil, hs, 1), kmsg.SASLHandshake.Int16(), 0, 1)
			if code := resp.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
				t.Fatalf("SaslHandshake v0: error %d", code)
			}
			token := []byte("\x00" + c.User + "\x00" + tc.password)
			if _, err := conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(token))), token...)); err != nil {
				t.Fatal(err)
			}
			var size [4]byte
			_, err = io.ReadFull(conn, size[:])
			if !tc.ok {
				if err == nil {
					t.Fatalf("wrong password answered with a %d-byte token", binary.BigEndian.Uint32(size[:]))
				}
				return
			}
			if err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
				t.Fatalf("PLAIN token reply: size %x, %v", size, err)
			}
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 1
			resp = roundTrip(t, conn, f.AppendRequest(nil, md, 2), kmsg.Metadata.Int16(), 1, 2)
			if n := len(resp.(*kmsg.MetadataResponse).Brokers); n != 1 {
				t.Fatalf("Metadata after v0 authentication: %d brokers", n)
			}
		})
	}
	if st := c.Stats(); st.Authenticated != 1 || st.AuthFailures != 1 {
		t.Fatalf("stats %+v, want one authentication and one failure", st)
	}
}

func roundTrip(t *testing.T, conn net.Conn, frame []byte, key, version int16, corr int32) kmsg.Response {
	t.Helper()
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("%s response: %v", kmsg.NameForKey(key), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	got, resp, err := pipeline.DecodeResponseFrame(key, version, body)
	if err != nil || got != corr {
		t.Fatalf("%s response: correlation %d, %v", kmsg.NameForKey(key), got, err)
	}
	return resp
}
