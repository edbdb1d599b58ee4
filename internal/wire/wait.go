package wire

import (
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// LongWait is how long a broker may take to start answering a request
// whose own wait is not in its first bytes: a SyncGroup waits for the
// group's leader, an admin request for its timeout further on. Kafka's
// default rebalance timeout (max.poll.interval.ms) is 5 minutes.
const LongWait = 5 * time.Minute

// RequestWait is how long a broker may legitimately hold a request before
// its response starts, beyond the usual round trip, read from the
// request's first bytes (frame without the size prefix) where the request
// says so: a Fetch's max wait, a Produce's timeout, a JoinGroup's
// rebalance timeout (at least LongWait: the group's longest counts). Keys that wait on others without saying how long in
// their first bytes get LongWait; every other key 0.
func RequestWait(b []byte, key, version int16) time.Duration {
	ms := int32(-1)
	switch kmsg.Key(key) {
	case kmsg.Fetch:
		if off, ok := bodyStart(b, key, version); ok {
			if version < 15 {
				off += 4 // replica_id
			}
			ms = int32At(b, off)
		}
	case kmsg.Produce:
		if _, _, off, err := produceStart(b, version); err == nil {
			ms = int32At(b, off+2) // after acks
		}
	case kmsg.JoinGroup:
		if off, ok := bodyStart(b, key, version); ok {
			flexible, _ := RequestFlexible(key, version)
			if _, end, err := stringAt(b, off, flexible); err == nil {
				if version == 0 {
					ms = int32At(b, end) // the session timeout bounds the join
				} else {
					ms = int32At(b, end+4) // rebalance timeout
				}
			}
		}
	case kmsg.SyncGroup, kmsg.ShareFetch, kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.DeleteRecords,
		kmsg.CreatePartitions, kmsg.ElectLeaders, kmsg.AlterPartitionAssignments:
		return LongWait
	default:
		return 0
	}
	if ms < 0 {
		return LongWait // not in the bytes at hand, or nonsense
	}
	w := time.Duration(ms) * time.Millisecond
	if kmsg.Key(key) == kmsg.JoinGroup {
		// The broker holds a join for the group's longest rebalance
		// timeout, which may be another member's.
		w = max(w, LongWait)
	}
	return w
}

// bodyStart skips a request header (key, version, correlation id, client
// id, and tagged fields on flexible versions) and returns where the body
// starts; false if b ends before it does. It does not allocate.
func bodyStart(b []byte, key, version int16) (int, bool) {
	off := 8
	if len(b) < off+2 {
		return 0, false
	}
	if n := int16(binary.BigEndian.Uint16(b[off:])); n > 0 {
		off += int(n)
	}
	off += 2
	if flexible, _ := RequestFlexible(key, version); flexible {
		var err error
		if off, err = SkipTags(b, off); err != nil {
			return 0, false
		}
	}
	return off, off <= len(b)
}

// int32At is the int32 at off, or -1 if b ends before it.
func int32At(b []byte, off int) int32 {
	if off < 0 || len(b) < off+4 {
		return -1
	}
	return int32(binary.BigEndian.Uint32(b[off:]))
}
