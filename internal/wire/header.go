package wire

import (
	"encoding/binary"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RequestHeaderMin is the fixed part of every request header: api key,
// api version, correlation id and the client id length.
const RequestHeaderMin = 10

// RequestHeader is the part of a request header the proxy routes by.
type RequestHeader struct {
	Key           int16
	Version       int16
	CorrelationID int32
}

// ParseRequestHeader reads key, version and correlation id from the first
// eight bytes of a request body.
func ParseRequestHeader(b []byte) RequestHeader {
	return RequestHeader{
		Key:           int16(binary.BigEndian.Uint16(b)),
		Version:       int16(binary.BigEndian.Uint16(b[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(b[4:])),
	}
}

// keyInfo is what the hot path needs to know about an API key.
type keyInfo struct {
	known        bool
	maxVersion   int16
	flexibleFrom int16 // first flexible version, -1 if never flexible
}

// keys is indexed by API key. Computed once: kmsg allocates a request value
// per lookup, which the hot path must not.
var keys = func() []keyInfo {
	var out []keyInfo
	for key := int16(0); key < 1000; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			out = append(out, keyInfo{})
			continue
		}
		info := keyInfo{known: true, maxVersion: req.MaxVersion(), flexibleFrom: -1}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				info.flexibleFrom = v
				break
			}
		}
		out = append(out, info)
	}
	for len(out) > 0 && !out[len(out)-1].known {
		out = out[:len(out)-1]
	}
	return out
}()

// ErrUnknownKey means kmsg does not know an API key, so whether its
// headers are flexible cannot be known.
var ErrUnknownKey = errors.New("unknown api key")

func lookup(key int16) (keyInfo, bool) {
	if key < 0 || int(key) >= len(keys) || !keys[key].known {
		return keyInfo{}, false
	}
	return keys[key], true
}

// MaxVersion is the highest version of key that kmsg can parse.
func MaxVersion(key int16) (int16, bool) {
	info, ok := lookup(key)
	return info.maxVersion, ok
}

// RequestFlexible reports whether requests of key/version use header v2
// (with tagged fields). Versions above what kmsg knows are assumed to stay
// flexible once a key became flexible, as Kafka never goes back.
func RequestFlexible(key, version int16) (bool, error) {
	info, ok := lookup(key)
	if !ok {
		return false, ErrUnknownKey
	}
	return info.flexibleFrom >= 0 && version >= info.flexibleFrom, nil
}

// ResponseFlexible reports whether responses of key/version carry header
// tagged fields. ApiVersions responses never do, so that any client can
// parse them before versions are negotiated.
func ResponseFlexible(key, version int16) (bool, error) {
	if key == kmsg.ApiVersions.Int16() {
		return false, nil
	}
	return RequestFlexible(key, version)
}
