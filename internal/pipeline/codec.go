package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrUnsupportedVersion is returned (wrapped) for a message a stage must
// read at a version kmsg cannot parse. The ApiVersions clamp keeps
// well-behaved clients from getting there.
var ErrUnsupportedVersion = errors.New("version not supported by this proxy")

// DecodeRequest decodes a request frame without its size prefix, reading
// key and version from its header. Callers must have checked that b holds
// at least the fixed header (wire.RequestHeaderMin bytes).
func DecodeRequest(b []byte) (kmsg.Request, error) {
	return decodeRequest(b, int16(binary.BigEndian.Uint16(b)), int16(binary.BigEndian.Uint16(b[2:])))
}

// decodeRequest decodes a request frame without its size prefix.
func decodeRequest(b []byte, key, version int16) (kmsg.Request, error) {
	req := kmsg.RequestForKey(key)
	if req == nil || version < 0 || version > req.MaxVersion() {
		return nil, fmt.Errorf("%s v%d request: %w", kmsg.NameForKey(key), version, ErrUnsupportedVersion)
	}
	req.SetVersion(version)
	r := kbin.Reader{Src: b[8:]} // after key, version, correlation id
	if hasClientID(key, version) {
		r.NullableString()
	}
	var err error
	if req.IsFlexible() {
		err = skipTags(&r)
	}
	if err := errors.Join(err, r.Complete()); err != nil {
		return nil, fmt.Errorf("%s v%d request header: %w", kmsg.NameForKey(key), version, err)
	}
	if err := readFrom(req, r.Src); err != nil {
		return nil, fmt.Errorf("decode %s v%d request: %w", kmsg.NameForKey(key), version, err)
	}
	return req, nil
}

// hasClientID: every request header has a client id but ControlledShutdown
// v0's (header v0), as kmsg's formatter writes it.
func hasClientID(key, version int16) bool {
	return key != kmsg.ControlledShutdown.Int16() || version != 0
}

// parseClientID reads the client id of a request frame (size removed).
func parseClientID(b []byte) (*string, error) {
	if !hasClientID(int16(binary.BigEndian.Uint16(b)), int16(binary.BigEndian.Uint16(b[2:]))) {
		return nil, nil
	}
	r := kbin.Reader{Src: b[8:]}
	id := r.NullableString()
	return id, r.Complete()
}

// DecodeResponse decodes a response body (after the response header) for
// a request of key at version. An ApiVersions UNSUPPORTED_VERSION answer
// is decoded as v0, since brokers always encode it so.
func DecodeResponse(key, version int16, body []byte) (kmsg.Response, error) {
	resp := kmsg.ResponseForKey(key)
	if resp == nil || version < 0 || version > resp.MaxVersion() {
		return nil, fmt.Errorf("%s v%d response: %w", kmsg.NameForKey(key), version, ErrUnsupportedVersion)
	}
	if key == kmsg.ApiVersions.Int16() && len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == kerr.UnsupportedVersion.Code {
		version = 0
	}
	resp.SetVersion(version)
	if err := readFrom(resp, body); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return resp, nil
}

// DecodeResponseFrame decodes a response frame without its size prefix,
// for a request of key at version: the correlation id, the header's
// tagged fields (skipped), then the body as DecodeResponse does.
func DecodeResponseFrame(key, version int16, b []byte) (corr int32, resp kmsg.Response, err error) {
	r := kbin.Reader{Src: b}
	corr = r.Int32()
	flexible := false
	if m := kmsg.ResponseForKey(key); m != nil && version >= 0 && version <= m.MaxVersion() {
		m.SetVersion(version)
		flexible = m.IsFlexible()
	}
	var tagErr error
	if flexible && key != kmsg.ApiVersions.Int16() {
		tagErr = skipTags(&r)
	}
	if err := errors.Join(tagErr, r.Complete()); err != nil {
		return corr, nil, fmt.Errorf("%s v%d response header: %w", kmsg.NameForKey(key), version, err)
	}
	resp, err = DecodeResponse(key, version, r.Src)
	return corr, resp, err
}

// readFrom is ReadFrom with a recover: a bad frame from one peer must cost
// one connection, never the process. Strings are copied (not
// UnsafeReadFrom), so stages may keep what they read.
func readFrom(m interface{ ReadFrom([]byte) error }, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kmsg panic: %v", r)
		}
	}()
	return m.ReadFrom(b)
}

// AppendResponse appends resp as a complete response frame (size prefix
// included) for correlation id corr. The header's tagged fields follow
// resp's version, except for ApiVersions, whose responses always use
// header v0 so that any client can read them.
func AppendResponse(dst []byte, resp kmsg.Response, corr int32) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, corr)
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
