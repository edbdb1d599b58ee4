package rewrite

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsFixture lists every key kmsg knows three versions above kmsg's
// max (must be clamped), plus entries that must survive as they are.
func apiVersionsFixture(v int16) *kmsg.ApiVersionsResponse {
	r := kmsg.NewPtrApiVersionsResponse()
	r.SetVersion(v)
	r.ThrottleMillis = 7
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		resp := kmsg.ResponseForKey(k)
		if resp == nil {
			continue
		}
		r.ApiKeys = append(r.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: 0, MaxVersion: resp.MaxVersion() + 3})
	}
	r.ApiKeys = append(r.ApiKeys,
		kmsg.ApiVersionsResponseApiKey{ApiKey: 9999, MinVersion: 0, MaxVersion: 42}, // unknown to kmsg
		kmsg.ApiVersionsResponseApiKey{ApiKey: 3, MinVersion: 20, MaxVersion: 25},   // min above what kmsg parses
	)
	if v >= 3 {
		r.FinalizedFeaturesEpoch = 5
		r.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{Name: "metadata.version", MinVersion: 1, MaxVersion: 20}}
	}
	return r
}

func TestAPIVersionsClamp(t *testing.T) {
	maxV := kmsg.NewPtrApiVersionsResponse().MaxVersion()
	for v := int16(0); v <= maxV; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			in := apiVersionsFixture(v)
			body := encode(in)
			out, changed, err := response(t, 18, v, body, errMapper{}) // the clamp needs no mapper
			if err != nil || !changed {
				t.Fatalf("got changed=%v err=%v", changed, err)
			}
			got := decodeAt(t, 18, v, out).(*kmsg.ApiVersionsResponse)
			if len(got.ApiKeys) != len(in.ApiKeys) {
				t.Fatalf("got %d keys, want %d", len(got.ApiKeys), len(in.ApiKeys))
			}
			for i, k := range got.ApiKeys {
				want := in.ApiKeys[i]
				if limit, ok := MaxRewritableVersion(want.ApiKey); ok && want.MinVersion <= limit {
					want.MaxVersion = limit
				}
				if k.ApiKey != want.ApiKey || k.MinVersion != want.MinVersion || k.MaxVersion != want.MaxVersion {
					t.Errorf("key %d: got %d..%d, want %d..%d", want.ApiKey, k.MinVersion, k.MaxVersion, want.MinVersion, want.MaxVersion)
				}
			}
			last := got.ApiKeys[len(got.ApiKeys)-2:]
			if last[0].MaxVersion != 42 || last[1].MinVersion != 20 || last[1].MaxVersion != 25 {
				t.Errorf("unknown key or unparseable range changed: %+v", last)
			}
			if got.ThrottleMillis != in.ThrottleMillis && v >= 1 {
				t.Errorf("throttle lost: %d", got.ThrottleMillis)
			}
			if v >= 3 && (got.FinalizedFeaturesEpoch != 5 || len(got.SupportedFeatures) != 1) {
				t.Errorf("features lost: %+v", got)
			}
		})
	}
}

func TestAPIVersionsAlreadyWithinLimits(t *testing.T) {
	r := kmsg.NewPtrApiVersionsResponse()
	r.SetVersion(3)
	r.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 3, MaxVersion: 12}, {ApiKey: 18, MaxVersion: 3}, {ApiKey: 9999, MaxVersion: 7}}
	body := encode(r)
	out, changed, err := response(t, 18, 3, body, nil)
	if err != nil || changed || !sameSlice(out, body) {
		t.Fatalf("got changed=%v err=%v, want the body back", changed, err)
	}
}

// TestAPIVersionsUnsupportedVersion: the broker answers an ApiVersions it
// does not support with UNSUPPORTED_VERSION encoded as v0, whatever the
// request's version. It is decoded (and clamped) as v0 and stays v0; an
// answer already within the proxy's range passes as is.
func TestAPIVersionsUnsupportedVersion(t *testing.T) {
	for _, brokerMax := range []int16{99, 3} {
		r := kmsg.NewPtrApiVersionsResponse()
		r.SetVersion(0)
		r.ErrorCode = 35
		r.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: brokerMax}}
		body := r.AppendTo(nil)
		// Above the max the proxy answers the request itself (Versions).
		for v := int16(0); v <= apiVersionsMax(); v++ {
			out, changed, err := response(t, 18, v, body, nil)
			if err != nil {
				t.Fatalf("v%d: %v", v, err)
			}
			if brokerMax <= apiVersionsMax() {
				if changed || !sameSlice(out, body) {
					t.Errorf("broker max %d, v%d: changed=%v, want the body back", brokerMax, v, changed)
				}
				continue
			}
			got := kmsg.NewPtrApiVersionsResponse()
			got.SetVersion(0)
			if err := got.ReadFrom(out); err != nil || !changed {
				t.Fatalf("v%d: changed=%v, decode as v0: %v", v, changed, err)
			}
			if got.ErrorCode != 35 || len(got.ApiKeys) != 1 || got.ApiKeys[0].MaxVersion != apiVersionsMax() {
				t.Errorf("v%d: got %+v, want error 35 and max %d", v, got, apiVersionsMax())
			}
		}
	}
}

func TestMaxRewritableVersion(t *testing.T) {
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		resp := kmsg.ResponseForKey(k)
		got, ok := MaxRewritableVersion(k)
		if resp == nil {
			if ok {
				t.Errorf("key %d unknown to kmsg: got ok", k)
			}
			continue
		}
		if !ok || got != resp.MaxVersion() {
			t.Errorf("key %d: got %d,%v want %d", k, got, ok, resp.MaxVersion())
		}
	}
	if _, ok := MaxRewritableVersion(9999); ok {
		t.Error("key 9999: got ok")
	}
	if _, ok := MaxRewritableVersion(-1); ok {
		t.Error("key -1: got ok")
	}
}
