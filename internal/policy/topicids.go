package policy

import "sync"

// maxTopicIDs bounds the id → name map: past it, the map starts over (a
// client naming a forgotten id gets UNKNOWN_TOPIC_ID, refreshes its
// metadata, and the proxy learns the id again).
const maxTopicIDs = 1 << 20

// topicIDs maps topic ids to names, learned from the Metadata and
// DescribeTopicPartitions answers the proxy relays, so that requests that
// name topics by id (Fetch v13+, Produce v13+, ...) are checked by name.
type topicIDs struct {
	mu    sync.RWMutex
	names map[[16]byte]string
}

func newTopicIDs() *topicIDs { return &topicIDs{names: make(map[[16]byte]string)} }

func (t *topicIDs) learn(id [16]byte, name string) {
	if id == ([16]byte{}) || name == "" {
		return
	}
	t.mu.RLock()
	known := t.names[id] == name
	t.mu.RUnlock()
	if known {
		return
	}
	t.mu.Lock()
	if len(t.names) >= maxTopicIDs {
		t.names = make(map[[16]byte]string)
	}
	t.names[id] = name
	t.mu.Unlock()
}

func (t *topicIDs) name(id [16]byte) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n, ok := t.names[id]
	return n, ok
}
