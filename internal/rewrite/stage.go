package rewrite

import (
	"bufio"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// addressKeys are the keys whose responses carry broker addresses, in the
// order of the lookup table.
var addressKeys = []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.Metadata, kmsg.FindCoordinator, kmsg.DescribeCluster, kmsg.ShareFetch, kmsg.ShareAcknowledge}

// Addresses is the stage that maps every broker address in responses to
// the proxy's (through m), so clients only ever learn proxy addresses. A
// request for such a key at a version kmsg cannot parse closes the
// connection, as a broker closes on an unsupported version: its response
// could not be rewritten and would leak an address.
func Addresses(m Mapper) pipeline.StreamingStage { return addresses{m} }

type addresses struct{ m Mapper }

func (addresses) Name() string { return "rewrite" }

func (addresses) Interest() pipeline.Interest {
	var in pipeline.Interest
	for _, key := range addressKeys {
		_, minVersion, _ := lookup(key.Int16())
		max := kmsg.ResponseForKey(key.Int16()).MaxVersion()
		in.Responses = append(in.Responses, pipeline.Keys{Key: key, MinVersion: minVersion, MaxVersion: max})
		in.Requests = append(in.Requests, pipeline.Keys{Key: key, MinVersion: max + 1, MaxVersion: pipeline.AnyVersion})
	}
	return in
}

func (addresses) OnRequest(ex *pipeline.Exchange) pipeline.Verdict {
	max := kmsg.ResponseForKey(ex.Key).MaxVersion()
	return pipeline.Refuse(fmt.Errorf("%s v%d is newer than this proxy can rewrite (max v%d) and the client did not negotiate versions", kmsg.NameForKey(ex.Key), ex.Version, max))
}

func (a addresses) OnResponse(ex *pipeline.Exchange, resp kmsg.Response) (bool, error) {
	rw, _, _ := lookup(ex.Key)
	return rw(resp, a.m)
}

func (addresses) Streams(key, version int16) bool { return Streamed(key, version) }

func (a addresses) Stream(w io.Writer, r *bufio.Reader, raw io.Reader, head []byte, n int, key, version int16, buf []byte, progress func()) error {
	if key == kmsg.Metadata.Int16() {
		return StreamMetadata(w, r, raw, head, n, version, a.m, buf, progress)
	}
	return StreamFetchProgress(w, r, raw, head, n, version, a.m, buf, progress)
}

// Versions is the ApiVersions clamp: every advertised max version is
// limited to what the proxy can parse (see rewriteAPIVersions), and an
// ApiVersions request newer than kmsg knows is answered as Kafka does, with
// a v0 UNSUPPORTED_VERSION response naming the versions the proxy takes,
// so the client retries lower.
func Versions() pipeline.Stage { return versions{} }

type versions struct{}

func (versions) Name() string { return "versions" }

func (versions) Interest() pipeline.Interest {
	max := apiVersionsMax()
	return pipeline.Interest{
		Requests:  []pipeline.Keys{{Key: kmsg.ApiVersions, MinVersion: max + 1, MaxVersion: pipeline.AnyVersion}},
		Responses: []pipeline.Keys{{Key: kmsg.ApiVersions, MaxVersion: max}},
	}
}

func (versions) OnRequest(*pipeline.Exchange) pipeline.Verdict {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: kmsg.ApiVersions.Int16(), MaxVersion: apiVersionsMax()}}
	return pipeline.Reply(resp)
}

func (versions) OnResponse(_ *pipeline.Exchange, resp kmsg.Response) (bool, error) {
	return rewriteAPIVersions(resp, nil)
}

func apiVersionsMax() int16 { return kmsg.NewPtrApiVersionsRequest().MaxVersion() }
