// Package rewrite changes the broker addresses (and negotiable versions) in
// Kafka responses so that clients only ever learn proxy addresses.
//
// Each API key that carries an address has one small file here, named after
// the key (03_metadata.go, 10_find_coordinator.go, ...). All of them work on
// typed kmsg structs. Two stages (stage.go) put them on the request path:
// Addresses and the ApiVersions clamp, Versions; their interest decides
// which responses are decoded at all, so everything else streams through
// the proxy untouched.
//
// Deliberately not rewritten (see docs/ADDRESSES.md): DescribeQuorum (55)
// v2+ Nodes[].Listeners are controller listeners, which clients do not reach
// through this proxy; the KRaft and broker-registration APIs are
// inter-broker only.
package rewrite

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Mapper turns a broker's advertised address into the address clients must
// use to reach that broker through the proxy. It is implemented by
// internal/topology.
type Mapper interface {
	MapBroker(nodeID int32, host string, port int32) (string, int32, error)
}

// rewriter changes the addresses in one decoded response in place. resp is
// always the concrete kmsg type for the key the rewriter is registered for.
type rewriter func(resp kmsg.Response, m Mapper) (changed bool, err error)

// lookup is the table: the rewriter for a key and the first version whose
// responses carry something to rewrite.
func lookup(key int16) (rw rewriter, minVersion int16, ok bool) {
	switch key {
	case kmsg.Produce.Int16(): // Produce: KIP-951 node endpoints from v10
		return rewriteProduce, 10, true
	case kmsg.Fetch.Int16(): // Fetch: KIP-951 node endpoints from v16
		return rewriteFetch, 16, true
	case kmsg.Metadata.Int16():
		return rewriteMetadata, 0, true
	case kmsg.FindCoordinator.Int16():
		return rewriteFindCoordinator, 0, true
	case kmsg.ApiVersions.Int16():
		return rewriteAPIVersions, 0, true
	case kmsg.DescribeCluster.Int16():
		return rewriteDescribeCluster, 0, true
	case kmsg.ShareFetch.Int16():
		return rewriteShareFetch, 0, true
	case kmsg.ShareAcknowledge.Int16():
		return rewriteShareAcknowledge, 0, true
	}
	return nil, 0, false
}

// MaxRewritableVersion is the ApiVersions clamp policy: the highest version
// of key the proxy can parse, which is kmsg's max for that key. It applies
// to every key kmsg knows (not only the rewritten ones) because policy code
// decodes requests of other keys too. ok is false for keys kmsg does not
// know; those are advertised unchanged.
func MaxRewritableVersion(key int16) (int16, bool) {
	resp := kmsg.ResponseForKey(key)
	if resp == nil {
		return 0, false
	}
	return resp.MaxVersion(), true
}

// mapAddr maps one broker address in place. A mapper result equal to the
// input is not a change, so an identity mapping never re-encodes.
func mapAddr(m Mapper, nodeID int32, host *string, port *int32) (bool, error) {
	h, p, err := m.MapBroker(nodeID, *host, *port)
	if err != nil {
		return false, fmt.Errorf("map broker %d at %s: %w", nodeID, net.JoinHostPort(*host, strconv.Itoa(int(*port))), err)
	}
	if h == *host && p == *port {
		return false, nil
	}
	*host, *port = h, p
	return true, nil
}

// mapEach maps the address of every element of s; addr points into one
// element. Every kmsg broker/endpoint type is its own struct, hence generic.
func mapEach[T any](m Mapper, s []T, addr func(*T) (nodeID int32, host *string, port *int32)) (bool, error) {
	changed := false
	for i := range s {
		id, host, port := addr(&s[i])
		c, err := mapAddr(m, id, host, port)
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	return changed, nil
}
