package rewrite

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// notRewritten lists the responses that carry Host/Port fields and are
// passed on unrewritten on purpose, each with the reason. Request-only
// carriers (BrokerRegistration, ControllerRegistration, AddRaftVoter send
// listeners in the request, not the response) do not belong here.
var notRewritten = map[string]string{
	"DescribeACLs":          "ACL Host is the client host an ACL matches, not a broker address",
	"DeleteACLs":            "ACL Host is the client host an ACL matches, not a broker address",
	"Vote":                  "KRaft controller-to-controller",
	"BeginQuorumEpoch":      "KRaft controller-to-controller",
	"EndQuorumEpoch":        "KRaft controller-to-controller",
	"FetchSnapshot":         "KRaft controller-to-controller",
	"DescribeQuorum":        "controller listeners; clients do not reach controllers through the proxy (docs/ADDRESSES.md)",
	"UpdateRaftVoter":       "sent by a KRaft voter to the controller leader only",
	"StreamsGroupHeartbeat": "KIP-1071 UserEndpoint is a Streams application's own host:port, not a broker",
	"StreamsGroupDescribe":  "KIP-1071 UserEndpoint is a Streams application's own host:port, not a broker",
}

// notAddressFields are field names that end in Host or Port but name no
// broker.
var notAddressFields = map[string]string{
	"ClientHost": "a group member's client address (DescribeGroups and the group describe APIs)",
}

// addressFields walks a kmsg type and returns the paths of fields whose
// names say host or port.
func addressFields(t reflect.Type, path string, seen map[reflect.Type]bool) []string {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return addressFields(t.Elem(), path, seen)
	case reflect.Struct:
	default:
		return nil
	}
	if seen[t] {
		return nil
	}
	seen[t] = true
	var found []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		p := path + "." + f.Name
		if (strings.HasSuffix(f.Name, "Host") || strings.HasSuffix(f.Name, "Port")) && notAddressFields[f.Name] == "" {
			found = append(found, p)
		}
		found = append(found, addressFields(f.Type, p, seen)...)
	}
	return found
}

// TestEveryAddressCarrierIsHandled catches new address carriers when kmsg is
// upgraded: every response type with a Host/Port field must be in the
// rewrite table or in notRewritten.
func TestEveryAddressCarrierIsHandled(t *testing.T) {
	carriers := map[string]bool{}
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		resp := kmsg.ResponseForKey(k)
		if resp == nil {
			continue
		}
		name := kmsg.NameForKey(k)
		found := addressFields(reflect.TypeOf(resp), name, map[reflect.Type]bool{})
		if len(found) == 0 {
			continue
		}
		carriers[name] = true
		_, _, inTable := lookup(k)
		if !inTable && notRewritten[name] == "" {
			sort.Strings(found)
			t.Errorf("%s (key %d) carries %v: add a rewriter or list it in notRewritten with a reason", name, k, found)
		}
		if inTable && notRewritten[name] != "" {
			t.Errorf("%s is both rewritten and in notRewritten", name)
		}
	}
	for name := range notRewritten {
		if !carriers[name] {
			t.Errorf("notRewritten lists %s, which carries no address in this kmsg: remove it", name)
		}
	}
	// The walk must see the carriers we know, or it proves nothing.
	for _, name := range []string{"Metadata", "FindCoordinator", "Produce", "Fetch", "DescribeCluster", "ShareFetch", "ShareAcknowledge", "DescribeQuorum"} {
		if !carriers[name] {
			t.Errorf("walk missed %s", name)
		}
	}
}
