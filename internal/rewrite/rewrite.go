// Package rewrite changes the broker addresses (and negotiable versions) in
// Kafka responses so that clients only ever learn proxy addresses.
//
// Each API key that carries an address has one small file here, named after
// the key (03_metadata.go, 10_find_coordinator.go, ...). All of them work on
// typed kmsg structs; the table in this file decides which responses are
// decoded at all, so everything else streams through the proxy untouched.
//
// Deliberately not rewritten (see docs/ADDRESSES.md): DescribeQuorum (55)
// v2+ Nodes[].Listeners are controller listeners, which clients do not reach
// through this proxy; the KRaft and broker-registration APIs are
// inter-broker only.
package rewrite

import (
	"errors"
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

// ErrUnsupportedVersion is returned (wrapped) by Response for a response
// that needs a rewrite but whose version kmsg cannot parse. Passing it on
// would leak broker addresses, so the proxy must close the connection. The
// ApiVersions clamp keeps well-behaved clients from getting here.
var ErrUnsupportedVersion = errors.New("response version not supported by the rewriter")

// rewriter changes the addresses in one decoded response in place. resp is
// always the concrete kmsg type for the key the rewriter is registered for.
type rewriter func(resp kmsg.Response, m Mapper) (changed bool, err error)

// lookup is the table: the rewriter for a key and the first version whose
// responses carry something to rewrite. A switch (not a map) keeps it free
// of package-level state and allocation, since Needed runs per response.
func lookup(key int16) (rw rewriter, minVersion int16, ok bool) {
	switch key {
	case 0: // Produce: KIP-951 node endpoints from v10
		return rewriteProduce, 10, true
	case 1: // Fetch: KIP-951 node endpoints from v16
		return rewriteFetch, 16, true
	case 3:
		return rewriteMetadata, 0, true
	case 10:
		return rewriteFindCoordinator, 0, true
	case 18:
		return rewriteAPIVersions, 0, true
	case 60:
		return rewriteDescribeCluster, 0, true
	case 78:
		return rewriteShareFetch, 0, true
	case 79:
		return rewriteShareAcknowledge, 0, true
	}
	return nil, 0, false
}

// Needed reports whether a response for this request key/version must be
// decoded (a rewrite applies). It does not allocate: it runs per response.
// Versions above what kmsg knows are still Needed, so that Response can
// refuse them instead of letting an address through.
func Needed(key, version int16) bool {
	_, minVersion, ok := lookup(key)
	return ok && version >= minVersion
}

// Response rewrites one response body: the bytes after the response header
// (after the correlation id and, for flexible versions, the header tags),
// for a request of key/version.
//
// It returns the body to send: the original slice if nothing changed
// (including keys and versions that need no rewrite), else a newly
// allocated encoding. The new buffer is never body itself, because decoded
// record batches and unknown tags alias body. Decoding copies strings
// (ReadFrom, not UnsafeReadFrom) so a Mapper may keep the hosts it is given.
//
// Errors name what failed (decode, the broker whose mapping failed, an
// unparseable version) but not the key and version, which the caller
// already has and adds.
func Response(key, version int16, body []byte, m Mapper) (out []byte, changed bool, err error) {
	rw, minVersion, ok := lookup(key)
	if !ok || version < minVersion {
		return body, false, nil
	}
	if key == apiVersionsKey && apiVersionsUnsupported(body) {
		return body, false, nil
	}
	resp := kmsg.ResponseForKey(key)
	if version < 0 || version > resp.MaxVersion() {
		return nil, false, fmt.Errorf("kmsg parses up to v%d: %w", resp.MaxVersion(), ErrUnsupportedVersion)
	}
	resp.SetVersion(version)
	if err := decode(resp, body); err != nil {
		return nil, false, fmt.Errorf("decode: %w", err)
	}
	changed, err = rw(resp, m)
	if err != nil {
		return nil, false, err
	}
	if !changed {
		return body, false, nil
	}
	return resp.AppendTo(make([]byte, 0, len(body)+64)), true, nil
}

// decode is resp.ReadFrom with a recover: kmsg v1.15 did not panic in
// fuzzing, but a bad frame from one broker must cost one connection, never
// the whole process.
//
// Known kmsg v1.15 cost: a flexible body whose tag count is a huge uvarint
// (0xffffffff in five bytes) makes ReadFrom loop that many times even after
// the data ran out, about two minutes of CPU, before it returns an error.
// Only an upstream broker writes response bodies, so the proxy accepts it;
// the fuzz tests defuse such counts so that they do not stall.
func decode(resp kmsg.Response, body []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kmsg panic: %v", r)
		}
	}()
	return resp.ReadFrom(body)
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
