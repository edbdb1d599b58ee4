package sni

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

func TestParseNames(t *testing.T) {
	bad := []struct{ bootstrap, pattern, why string }{
		{"", "b-$(nodeId).example.com", "empty"},
		{"bootstrap.example.com", "b.example.com", "exactly once"},
		{"bootstrap.example.com", "b-$(nodeId)-$(nodeId).example.com", "exactly once"},
		{"bootstrap.example.com", "b_$(nodeId).example.com", "not a DNS host name"},
		{"10.0.0.1", "b-$(nodeId).example.com", "IP address"},
		{"b-1.example.com", "b-$(nodeId).example.com", "also a broker name"},
		{"bootstrap.example.com", "$(nodeId)", "IP address"},
		{"boot..example.com", "b-$(nodeId).example.com", "not a DNS host name"},
		{"-boot.example.com", "b-$(nodeId).example.com", "not a DNS host name"},
	}
	for _, c := range bad {
		if _, err := ParseNames(c.bootstrap, c.pattern); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseNames(%q, %q) = %v, want an error saying %q", c.bootstrap, c.pattern, err, c.why)
		}
	}
	n, err := ParseNames("Bootstrap.Kafka.Example.com.", "Broker-$(nodeId).kafka.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Broker(12); got != "broker-12.kafka.example.com" {
		t.Errorf("Broker(12) = %q", got)
	}
	if n.Bootstrap() != "bootstrap.kafka.example.com" {
		t.Errorf("Bootstrap() = %q", n.Bootstrap())
	}
}

func TestRoute(t *testing.T) {
	n, err := ParseNames("bootstrap.kafka.example.com", "broker-$(nodeId).kafka.example.com")
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]int32{
		"bootstrap.kafka.example.com":         Bootstrapping,
		"BOOTSTRAP.kafka.example.com.":        Bootstrapping,
		"broker-0.kafka.example.com":          0,
		"Broker-7.Kafka.Example.Com":          7,
		"broker-2147483647.kafka.example.com": 2147483647,
	}
	for name, want := range good {
		if got, err := n.Route(name); err != nil || got != want {
			t.Errorf("Route(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"", "kafka.example.com", "broker-.kafka.example.com", "broker-01.kafka.example.com",
		"broker-+1.kafka.example.com", "broker--1.kafka.example.com", "broker-2147483648.kafka.example.com",
		"broker-1.kafka.example.com.evil", "xbroker-1.kafka.example.com", "broker-1x.kafka.example.com"} {
		if id, err := n.Route(name); !errors.Is(err, ErrUnknownName) {
			t.Errorf("Route(%q) = %d, %v; want ErrUnknownName", name, id, err)
		}
	}
}

type fakeBrokers map[int32]string

func (f fakeBrokers) Bootstrap() string { return "kafka-0:9092" }
func (f fakeBrokers) Broker(_ context.Context, id int32) (string, error) {
	if b, ok := f[id]; ok {
		return b, nil
	}
	return "", errors.New("the cluster does not list it")
}

// TestStep: the step routes only connections that name no broker yet.
func TestStep(t *testing.T) {
	n, _ := ParseNames("bootstrap.kafka.test", "broker-$(nodeId).kafka.test")
	step := Step(n, fakeBrokers{2: "kafka-2:9092"})
	cases := []struct {
		broker, name, want, err string
	}{
		{"", "bootstrap.kafka.test", "kafka-0:9092", ""},
		{"", "broker-2.kafka.test", "kafka-2:9092", ""},
		{"", "broker-3.kafka.test", "", "does not list"},
		{"", "other.kafka.test", "", `unknown SNI name "other.kafka.test"`},
		{"", "", "", "no SNI name"},
		{"kafka-1:9092", "", "kafka-1:9092", ""}, // a per-broker listener
	}
	for _, c := range cases {
		cl := &pipeline.Client{Broker: c.broker, ServerName: c.name}
		err := step.Run(context.Background(), cl)
		switch {
		case c.err == "" && err != nil, c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q on %q: err %v, want %q", c.name, c.broker, err, c.err)
		case err == nil && cl.Broker != c.want:
			t.Errorf("%q on %q: routed to %q, want %q", c.name, c.broker, cl.Broker, c.want)
		}
	}
}

// FuzzRoute: any SNI name either routes to a node whose name is the
// canonical form of the input, or is refused; nothing panics.
func FuzzRoute(f *testing.F) {
	n, _ := ParseNames("bootstrap.kafka.test", "broker-$(nodeId).kafka.test")
	for _, s := range []string{"bootstrap.kafka.test", "broker-1.kafka.test", "broker-01.kafka.test", "broker-.kafka.test", "\x00", "broker-99999999999.kafka.test"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, err := n.Route(name)
		if err != nil {
			return
		}
		want := n.Bootstrap()
		if id != Bootstrapping {
			if id < 0 {
				t.Fatalf("Route(%q) = %d", name, id)
			}
			want = n.Broker(id)
		}
		if canonical(name) != want {
			t.Fatalf("Route(%q) = %d, whose name is %q", name, id, want)
		}
	})
}
