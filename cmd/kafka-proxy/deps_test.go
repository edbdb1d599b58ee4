package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/gobuild"
)

// The test kit: packages only tests may link.
var testKit = map[string]bool{
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest":             true,
	"github.com/kafka-proxy/kafka-proxy/internal/ldaptest":              true,
	"github.com/kafka-proxy/kafka-proxy/internal/logbuf":                true,
	"github.com/kafka-proxy/kafka-proxy/internal/gobuild":               true,
	"github.com/kafka-proxy/kafka-proxy/internal/authplugin/plugintest": true,
	"github.com/hashicorp/go-plugin":                                    true, // the test plugin's half; the proxy's host is its own
}

// The binary links no test code: not the testing package (whose flags and
// init would ship in production) and not the test kit. The demo's
// in-memory cluster is internal/memkafka for this reason.
func TestBinaryDoesNotLinkTestKit(t *testing.T) {
	out, err := exec.Command(gobuild.GoTool(), "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages: %q", len(deps), out)
	}
	seen := map[string]bool{}
	for _, p := range deps {
		seen[p] = true
		if p == "testing" || strings.HasPrefix(p, "testing/") || testKit[p] {
			t.Errorf("the kafka-proxy binary links %s", p)
		}
	}
	if !seen["github.com/kafka-proxy/kafka-proxy/internal/memkafka"] {
		t.Errorf("the binary does not link internal/memkafka: has the demo moved? update this test")
	}
}
