package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// maxResponse bounds what the dialer reads during set-up; ApiVersions and
// SASL responses are small, so a huge size means we are not talking Kafka
// (e.g. TLS expected, plaintext port).
const maxResponse = 1 << 20

// NewConnRoundTripper returns a RoundTripper that sends one request at a
// time on conn and reads its response, with client id clientID. Dial uses
// it before handing the connection over; tests use it to talk to brokers.
func NewConnRoundTripper(conn net.Conn, clientID string) RoundTripper {
	return &connRoundTripper{conn: conn, clientID: clientID}
}

// connRoundTripper speaks Kafka on a fresh connection before the proxy
// takes it over: one request at a time, nothing buffered past a response.
type connRoundTripper struct {
	conn     net.Conn
	clientID string
	format   *kmsg.RequestFormatter
	corr     int32
}

func (rt *connRoundTripper) RoundTrip(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	// On cancellation the callback expires the deadline to unblock I/O. It
	// may still be running when stop() returns false, so wait for it
	// before clearing the deadline: otherwise the connection could reach
	// the session with an expired deadline.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = rt.conn.SetDeadline(time.Unix(1, 0))
	})
	if dl, ok := ctx.Deadline(); ok {
		_ = rt.conn.SetDeadline(dl)
	}
	defer func() {
		if !stop() {
			<-fired
		}
		_ = rt.conn.SetDeadline(time.Time{})
	}()

	rt.corr++
	corr := rt.corr
	if rt.format == nil {
		rt.format = kmsg.NewRequestFormatter(kmsg.FormatterClientID(rt.clientID))
	}
	buf := rt.format.AppendRequest(make([]byte, 0, 128), req, corr)
	if _, err := rt.conn.Write(buf); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("write %s: %w", kmsg.NameForKey(req.Key()), err))
	}

	var size [4]byte
	if _, err := io.ReadFull(rt.conn, size[:]); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), closedErr(err)))
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > maxResponse {
		return nil, fmt.Errorf("read %s response: %w %d (is this a Kafka listener with the right TLS setting?)", kmsg.NameForKey(req.Key()), errImplausibleSize, n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(rt.conn, frame); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), closedErr(err)))
	}
	got, resp, err := pipeline.DecodeResponseFrame(req.Key(), req.GetVersion(), frame)
	if got != corr {
		return nil, fmt.Errorf("%s response has correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, corr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// errClosedByBroker marks a connection the broker closed mid-exchange,
// which is how brokers (and kfake) answer some authentication failures.
var errClosedByBroker = errors.New("broker closed the connection")

// errImplausibleSize is a response size no Kafka broker sends: usually
// TLS record bytes read as a Kafka frame.
var errImplausibleSize = errors.New("implausible size")

func closedErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errClosedByBroker
	}
	return err
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// apiVersions asks the broker what it supports: v3 first, falling back to
// v0 when the broker answers UNSUPPORTED_VERSION (in v0 format, as Kafka
// does for ApiVersions).
func apiVersions(ctx context.Context, rt RoundTripper) (*kmsg.ApiVersionsResponse, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "kafka-proxy"
	req.ClientSoftwareVersion = "1"
	resp, err := rt.RoundTrip(ctx, req)
	if err == nil {
		r := resp.(*kmsg.ApiVersionsResponse)
		if r.ErrorCode == 0 {
			return r, nil
		}
		if r.ErrorCode != kerr.UnsupportedVersion.Code {
			return nil, fmt.Errorf("ApiVersions: %w", kerr.ErrorForCode(r.ErrorCode))
		}
	} else if ctx.Err() != nil || errors.Is(err, errClosedByBroker) || isNetErr(err) {
		return nil, err
	}
	req.Version = 0
	resp, err = rt.RoundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.ApiVersionsResponse)
	if r.ErrorCode != 0 {
		return nil, fmt.Errorf("ApiVersions: %w", kerr.ErrorForCode(r.ErrorCode))
	}
	return r, nil
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// maxVersion is the broker's highest version of key, or -1.
func maxVersion(v *kmsg.ApiVersionsResponse, key int16) int16 {
	if v == nil {
		return -1
	}
	for _, k := range v.ApiKeys {
		if k.ApiKey == key {
			return k.MaxVersion
		}
	}
	return -1
}
