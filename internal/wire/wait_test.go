package wire_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/wire"
)

func frameOf(req kmsg.Request) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("a-client")).AppendRequest(nil, req, 7)[4:]
}

// RequestWait reads each waiting key's own wait at every version kmsg
// knows, and gives LongWait when the bytes end before it.
func TestRequestWait(t *testing.T) {
	for v := int16(0); v <= kmsg.NewPtrFetchRequest().MaxVersion(); v++ {
		r := kmsg.NewPtrFetchRequest()
		r.Version, r.MaxWaitMillis = v, 1234
		if got := wire.RequestWait(frameOf(r), r.Key(), v); got != 1234*time.Millisecond {
			t.Errorf("Fetch v%d: %v", v, got)
		}
	}
	txn := "txn"
	for v := int16(0); v <= kmsg.NewPtrProduceRequest().MaxVersion(); v++ {
		r := kmsg.NewPtrProduceRequest()
		r.Version, r.Acks, r.TimeoutMillis, r.TransactionID = v, -1, 4321, &txn
		if got := wire.RequestWait(frameOf(r), r.Key(), v); got != 4321*time.Millisecond {
			t.Errorf("Produce v%d: %v", v, got)
		}
	}
	for v := int16(0); v <= kmsg.NewPtrJoinGroupRequest().MaxVersion(); v++ {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Version, r.Group, r.SessionTimeoutMillis = v, "a-group", 10_000
		r.RebalanceTimeoutMillis = 900_000 // longer than LongWait: taken as is
		want := 900 * time.Second
		if v == 0 {
			want = wire.LongWait // the 10 s session timeout, raised to the group's possible longest
		}
		b := frameOf(r)
		if got := wire.RequestWait(b, r.Key(), v); got != want {
			t.Errorf("JoinGroup v%d: %v, want %v", v, got, want)
		}
		if got := wire.RequestWait(b[:20], r.Key(), v); got != wire.LongWait {
			t.Errorf("JoinGroup v%d cut short: %v", v, got)
		}
	}
	for _, r := range []kmsg.Request{kmsg.NewPtrSyncGroupRequest(), kmsg.NewPtrCreateTopicsRequest()} {
		if got := wire.RequestWait(frameOf(r), r.Key(), 0); got != wire.LongWait {
			t.Errorf("%s: %v", kmsg.NameForKey(r.Key()), got)
		}
	}
	for _, r := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrHeartbeatRequest()} {
		if got := wire.RequestWait(frameOf(r), r.Key(), 0); got != 0 {
			t.Errorf("%s: %v", kmsg.NameForKey(r.Key()), got)
		}
	}
}

// FuzzRequestWait: any bytes, any key and version, never panic.
func FuzzRequestWait(f *testing.F) {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 6
	f.Add(frameOf(r), int16(11), int16(6))
	f.Add(frameOf(kmsg.NewPtrFetchRequest()), int16(1), int16(0))
	f.Fuzz(func(t *testing.T, b []byte, key, version int16) {
		if w := wire.RequestWait(b, key, version); w < 0 {
			t.Fatalf("negative wait %v", w)
		}
	})
}
