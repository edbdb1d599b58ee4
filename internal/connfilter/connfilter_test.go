package connfilter

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) Rejected(_, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[reason]++
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs([]string{"1.2.3.4/32,5.6.7.8/24", " 10.0.0.1 ", "2001:db8::/32", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1.2.3.4/32", "5.6.7.0/24", "10.0.0.1/32", "2001:db8::/32", "::1/128"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"1.2.3.4/33", "example.com", "1.2.3/8"} {
		if _, err := ParseCIDRs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFilter(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		out, err := ParseCIDRs(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		allow, deny []netip.Prefix
		addr        string
		ok          bool
		reason      string
	}{
		{nil, nil, "10.1.1.1", true, ""},
		{p("10.0.0.0/8"), nil, "10.1.1.1", true, ""},
		{p("10.0.0.0/8"), nil, "11.1.1.1", false, ReasonNotAllowed},
		{p("10.0.0.0/8"), p("10.1.0.0/16"), "10.1.1.1", false, ReasonDenied}, // deny wins
		{nil, p("10.1.0.0/16"), "10.2.1.1", true, ""},
		{p("2001:db8::/32"), nil, "2001:db8::7", true, ""},
		{p("2001:db8::/32"), nil, "2001:db9::7", false, ReasonNotAllowed},
		{p("127.0.0.0/8"), nil, "::ffff:127.0.0.1", true, ""}, // IPv4-mapped is IPv4
	} {
		f := NewFilter(tc.allow, tc.deny, &counter{}, quiet)
		a, _ := addrOf(&net.TCPAddr{IP: net.ParseIP(tc.addr)})
		if ok, reason := f.Admits(a); ok != tc.ok || reason != tc.reason {
			t.Errorf("allow %v deny %v %s: %v %q, want %v %q", tc.allow, tc.deny, tc.addr, ok, reason, tc.ok, tc.reason)
		}
	}
}

func client(ip string) *pipeline.Client {
	return &pipeline.Client{Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000}, Listener: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092}}
}

func TestLimits(t *testing.T) {
	hooks := &counter{}
	l := NewLimits(3, 2, hooks, quiet)
	step := l.Step()
	admit := func(ip string) (*pipeline.Client, error) {
		c := client(ip)
		return c, step.Run(context.Background(), c)
	}
	a1, _ := admit("10.0.0.1")
	if _, err := admit("10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := admit("10.0.0.1"); !errors.Is(err, ErrRefused) {
		t.Fatalf("third from one address: %v", err)
	}
	if _, err := admit("10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := admit("10.0.0.3"); !errors.Is(err, ErrRefused) {
		t.Fatalf("fourth in total: %v", err)
	}
	if hooks.n[ReasonPerIP] != 1 || hooks.n[ReasonTotal] != 1 {
		t.Fatalf("counted %v", hooks.n)
	}
	a1.End()
	a1.End() // once only
	if l.Open() != 2 {
		t.Fatalf("%d open after one ended", l.Open())
	}
	if _, err := admit("10.0.0.1"); err != nil {
		t.Fatalf("a slot given back is free again: %v", err)
	}
}
