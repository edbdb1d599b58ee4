package pipeline

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxStages is how many stages a chain holds: masks are uint64.
const maxStages = 64

// Chain is the ordered list of stages with their interest folded into a
// key×version table once, so that the hot path asks one lookup whether a
// request or response needs anything beyond splicing.
type Chain struct {
	stages []Stage
	keys   [][]span // by API key; spans are disjoint and sorted
}

// span is a version range of one key and which stages want it.
type span struct {
	min, max int16
	req      uint64 // request stages, in chain order
	reqBody  uint64 // of those, the ones reading the decoded request
	resp     uint64 // response stages
	streamer int8   // the only response stage, if it streams this range; else -1
}

// Route is what the chain wants for one key and version: zero means
// nothing, and the message is spliced through.
type Route struct {
	req, reqBody, resp uint64
	streamer           int8
}

// Request reports whether any request stage wants the request.
func (r Route) Request() bool { return r.req != 0 }

// RequestBody reports whether a request stage reads the decoded request,
// so the whole frame must be read first.
func (r Route) RequestBody() bool { return r.reqBody != 0 }

// Response reports whether any response stage wants the response.
func (r Route) Response() bool { return r.resp != 0 }

// NewChain builds a chain; stages run in the order given. A stage must be
// a RequestStage if it declares requests and a ResponseStage if it
// declares responses.
func NewChain(stages ...Stage) (*Chain, error) {
	if len(stages) > maxStages {
		return nil, fmt.Errorf("%d stages: at most %d", len(stages), maxStages)
	}
	c := &Chain{stages: stages}
	type decl struct {
		k      Keys
		stage  int
		isResp bool
	}
	var decls []decl
	for i, s := range stages {
		in := s.Interest()
		if _, ok := s.(RequestStage); len(in.Requests) > 0 && !ok {
			return nil, fmt.Errorf("stage %s declares requests but has no OnRequest", s.Name())
		}
		if _, ok := s.(ResponseStage); len(in.Responses) > 0 && !ok {
			return nil, fmt.Errorf("stage %s declares responses but has no OnResponse", s.Name())
		}
		for _, k := range in.Requests {
			decls = append(decls, decl{k, i, false})
		}
		for _, k := range in.Responses {
			decls = append(decls, decl{k, i, true})
		}
	}
	for _, d := range decls {
		if d.k.Key < 0 || d.k.MinVersion < 0 || d.k.MaxVersion < d.k.MinVersion {
			return nil, fmt.Errorf("stage %s: invalid interest %+v", stages[d.stage].Name(), d.k)
		}
		for int(d.k.Key) >= len(c.keys) {
			c.keys = append(c.keys, nil)
		}
	}
	for key := range c.keys {
		// Cut the versions at every boundary any declaration has, then
		// ask each piece who wants it.
		cuts := []int{}
		for _, d := range decls {
			if int(d.k.Key) == key {
				cuts = append(cuts, int(d.k.MinVersion), int(d.k.MaxVersion)+1)
			}
		}
		slices.Sort(cuts)
		cuts = slices.Compact(cuts)
		for i := 0; i+1 < len(cuts); i++ {
			sp := span{min: int16(cuts[i]), max: int16(cuts[i+1] - 1), streamer: -1}
			for _, d := range decls {
				if int(d.k.Key) != key || d.k.MinVersion > sp.min || d.k.MaxVersion < sp.max {
					continue
				}
				bit := uint64(1) << d.stage
				switch {
				case d.isResp:
					sp.resp |= bit
				case d.k.Body:
					sp.req |= bit
					sp.reqBody |= bit
				default:
					sp.req |= bit
				}
			}
			if sp.req|sp.resp == 0 {
				continue
			}
			c.keys[key] = append(c.keys[key], splitStreamed(stages, int16(key), sp)...)
		}
	}
	return c, nil
}

// splitStreamed cuts sp where its only response stage, if it streams,
// starts or stops streaming, so that each span either streams throughout
// or not at all. It runs once per span when the chain is built.
func splitStreamed(stages []Stage, key int16, sp span) []span {
	if bits.OnesCount64(sp.resp) != 1 {
		return []span{sp}
	}
	i := bits.TrailingZeros64(sp.resp)
	st, ok := stages[i].(StreamingStage)
	if !ok {
		return []span{sp}
	}
	var out []span
	for v := int(sp.min); v <= int(sp.max); {
		streams := st.Streams(key, int16(v))
		end := v
		for end < int(sp.max) && st.Streams(key, int16(end+1)) == streams {
			end++
		}
		piece := sp
		piece.min, piece.max = int16(v), int16(end)
		if streams {
			piece.streamer = int8(i)
		}
		out = append(out, piece)
		v = end + 1
	}
	return out
}

// Route looks up what the chain wants for key at version. It does not
// allocate: it runs for every request.
func (c *Chain) Route(key, version int16) Route {
	if c == nil || key < 0 || int(key) >= len(c.keys) {
		return Route{streamer: -1}
	}
	for _, sp := range c.keys[key] {
		if version >= sp.min && version <= sp.max {
			return Route{req: sp.req, reqBody: sp.reqBody, resp: sp.resp, streamer: sp.streamer}
		}
	}
	return Route{streamer: -1}
}

// OnRequest runs the request stages of r in order until one answers or
// closes.
func (c *Chain) OnRequest(r Route, ex *Exchange) Verdict {
	for m := r.req; m != 0; m &= m - 1 {
		s := c.stages[bits.TrailingZeros64(m)].(RequestStage)
		if v := s.OnRequest(ex); v.Action != Forward {
			if v.Err != nil {
				v.Err = fmt.Errorf("%s: %w", s.Name(), v.Err)
			}
			return v
		}
	}
	return Pass()
}

// Streamer is the stage that relays r's responses by streaming, or nil
// when they are decoded whole (or not at all).
func (c *Chain) Streamer(r Route) StreamingStage {
	if r.streamer < 0 {
		return nil
	}
	return c.stages[r.streamer].(StreamingStage)
}

// OnResponse decodes a response body once for the exchange's After
// function and r's response stages, runs them in order, and returns the
// body to send: body itself if nothing changed, else a new encoding.
func (c *Chain) OnResponse(r Route, ex *Exchange, body []byte) ([]byte, bool, error) {
	resp, err := DecodeResponse(ex.Key, ex.SentVersion(), body)
	if err != nil {
		return nil, false, err
	}
	changed, err := c.RunResponse(r, ex, resp)
	if err != nil {
		return nil, false, err
	}
	if ex.upgraded {
		resp.SetVersion(ex.Version) // the client reads its own version
		changed = true
	}
	if !changed {
		return body, false, nil
	}
	// Never into body: decoded records and unknown tags alias it.
	return resp.AppendTo(make([]byte, 0, len(body)+64)), true, nil
}

// RunResponse runs the exchange's After function, then r's response
// stages in order, on a decoded response and reports whether any changed
// it.
func (c *Chain) RunResponse(r Route, ex *Exchange, resp kmsg.Response) (bool, error) {
	changed := false
	if ex.after != nil {
		ex.after(resp)
		changed = true
	}
	for m := r.resp; m != 0; m &= m - 1 {
		s := c.stages[bits.TrailingZeros64(m)].(ResponseStage)
		ch, err := s.OnResponse(ex, resp)
		if err != nil {
			return false, fmt.Errorf("%s: %w", s.Name(), err)
		}
		changed = changed || ch
	}
	return changed, nil
}
