package rewrite

import "github.com/twmb/franz-go/pkg/kmsg"

// rewriteFindCoordinator maps the group/transaction coordinator's address:
// one top-level coordinator in v0–v3, a batch (KIP-699) in v4+. An errored
// coordinator carries node id -1 and no host; there is nothing to map and a
// mapper would rightly refuse it, so it is left as the broker sent it.
func rewriteFindCoordinator(r kmsg.Response, m Mapper) (bool, error) {
	resp := r.(*kmsg.FindCoordinatorResponse)
	if resp.Version <= 3 {
		if resp.ErrorCode != 0 {
			return false, nil
		}
		return mapAddr(m, resp.NodeID, &resp.Host, &resp.Port)
	}
	changed := false
	for i := range resp.Coordinators {
		c := &resp.Coordinators[i]
		if c.ErrorCode != 0 {
			continue
		}
		ci, err := mapAddr(m, c.NodeID, &c.Host, &c.Port)
		if err != nil {
			return false, err
		}
		changed = changed || ci
	}
	return changed, nil
}
