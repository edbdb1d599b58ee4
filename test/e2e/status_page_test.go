package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStatusPage opens the demo's status page in headless Chromium (the
// page as a browser renders it, JavaScript or not): it shows the demo's
// three brokers and its configuration, and after a producer's traffic the
// numbers have moved.
func TestStatusPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	requireTool(t, "chromium", err)
	s := suiteFor(t)
	tg, err := s.startTarget("plaintext", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.demo.stop() })
	listen := regexp.MustCompile(`msg="http endpoints" listen=(\S+)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(50 * time.Millisecond) {
		if m := listen.FindStringSubmatch(tg.demo.out.String()); m != nil {
			url = "http://" + m[1] + "/"
		} else if time.Now().After(deadline) {
			t.Fatalf("no http endpoints line in the demo's output:\n%s", tg.demo.out.tail(30))
		}
	}
	profile := t.TempDir()
	render := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--disable-extensions", "--user-data-dir="+profile, "--dump-dom", url)
		cmd.Env = append(os.Environ(), "HOME="+profile)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium --dump-dom %s: %v", url, err)
		}
		return string(out)
	}
	total := func(dom string) int {
		m := regexp.MustCompile(`<b id="requests-total">(\d+)</b>`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("no request total on the rendered page:\n%s", dom)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}

	before := render()
	if n := strings.Count(before, `<tr class="broker">`); n != 3 {
		t.Errorf("%d broker rows, want the demo's 3:\n%s", n, before)
	}
	for _, want := range []string{"<title>kafka-proxy", `<b id="broker-count">3</b>`, `id="config"`, "bootstrapServers"} {
		if !strings.Contains(before, want) {
			t.Errorf("the rendered page has no %q", want)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(tg.bootstrap), kgo.DefaultProduceTopic("demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 50 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("status-" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce through the demo: %v", err)
		}
	}
	after := render()
	if a, b := total(after), total(before); a < b+50 {
		t.Errorf("requests answered %d before and %d after 50 produce requests", b, a)
	}
	if !strings.Contains(after, "<td>Produce</td>") || !strings.Contains(after, "reachable") {
		t.Errorf("after traffic the page shows no Produce row or no reachable broker:\n%s", after)
	}
}
