// Package connfilter admits or refuses client connections by address and
// by count, before anything else happens on them (before TLS): the IP
// allow and deny lists managed Kafka services offer, and limits on open
// connections in total and per client address.
package connfilter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
)

// ErrRefused marks a refusal of this package: the server counts it and
// does not log each one (Filter and Limits log a summary per interval).
var ErrRefused = errors.New("connection refused")

// Hooks counts refusals (proxy_connections_rejected_total).
type Hooks interface {
	Rejected(listener, reason string)
}

// Reasons, as the metric labels them.
const (
	ReasonDenied     = "ip-denied"      // in a deny list
	ReasonNotAllowed = "ip-not-allowed" // outside the allow list
	ReasonPerIP      = "max-connections-per-ip"
	ReasonTotal      = "max-connections"
)

// ParseCIDRs reads CIDRs, each flag value possibly a comma list
// ("1.2.3.4/32,5.6.7.0/24"); a bare address is a single host.
func ParseCIDRs(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if !strings.Contains(s, "/") {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return nil, fmt.Errorf("%q: not a CIDR or an IP address", s)
				}
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", s, err)
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// addrOf is the client's address, IPv4-mapped IPv6 addresses as IPv4.
func addrOf(a net.Addr) (netip.Addr, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(t.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap(), err == nil
}

// Contains reports whether a's address (IPv4-mapped IPv6 as IPv4) is in
// one of prefixes.
func Contains(prefixes []netip.Prefix, a net.Addr) bool {
	ip, ok := addrOf(a)
	if !ok {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Filter admits clients by address: one in a deny prefix is refused (deny
// wins); with allow prefixes, one outside all of them is refused.
type Filter struct {
	Allow, Deny []netip.Prefix
	hooks       Hooks
	report      *reporter
}

// NewFilter builds the filter step's state.
func NewFilter(allow, deny []netip.Prefix, hooks Hooks, log *slog.Logger) *Filter {
	return &Filter{Allow: allow, Deny: deny, hooks: hooks, report: newReporter(log, "ip filter refused connections")}
}

// Admits reports whether the filter lets a client at a in, and why not.
func (f *Filter) Admits(a netip.Addr) (bool, string) {
	for _, p := range f.Deny {
		if p.Contains(a) {
			return false, ReasonDenied
		}
	}
	if len(f.Allow) == 0 {
		return true, ""
	}
	for _, p := range f.Allow {
		if p.Contains(a) {
			return true, ""
		}
	}
	return false, ReasonNotAllowed
}

// Step is the admission step.
func (f *Filter) Step() pipeline.Step {
	return pipeline.Step{Name: "ip-filter", Run: func(_ context.Context, c *pipeline.Client) error {
		a, ok := addrOf(c.Remote)
		if !ok {
			return refuse(f.hooks, f.report, c, ReasonNotAllowed, fmt.Errorf("%w: client address %s unknown", ErrRefused, c.Remote))
		}
		if ok, reason := f.Admits(a); !ok {
			return refuse(f.hooks, f.report, c, reason, fmt.Errorf("%w: %s is %s", ErrRefused, a, strings.ReplaceAll(reason, "-", " ")))
		}
		return nil
	}}
}

func refuse(h Hooks, r *reporter, c *pipeline.Client, reason string, err error) error {
	h.Rejected(c.Listener.String(), reason)
	r.add(reason, c.Remote)
	return err
}

// Limits bounds open client connections, in total and per client address.
// A connection counts from its admission until it ends; one over a limit
// is refused and existing ones are untouched.
type Limits struct {
	total, perIP int
	hooks        Hooks
	report       *reporter

	mu   sync.Mutex
	open int
	byIP map[netip.Addr]int
}

// NewLimits builds the limits step's state; zero means no limit.
func NewLimits(total, perIP int, hooks Hooks, log *slog.Logger) *Limits {
	return &Limits{total: total, perIP: perIP, hooks: hooks, report: newReporter(log, "connection limits refused connections"), byIP: map[netip.Addr]int{}}
}

// Step is the admission step: it takes a slot, given back when the
// connection ends.
func (l *Limits) Step() pipeline.Step {
	return pipeline.Step{Name: "connection-limits", Run: func(_ context.Context, c *pipeline.Client) error {
		a, _ := addrOf(c.Remote)
		if reason := l.take(a); reason != "" {
			return refuse(l.hooks, l.report, c, reason, fmt.Errorf("%w: %s", ErrRefused, strings.ReplaceAll(reason, "-", " ")))
		}
		c.OnEnd(func() { l.give(a) })
		return nil
	}}
}

func (l *Limits) take(a netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total > 0 && l.open >= l.total:
		return ReasonTotal
	case l.perIP > 0 && l.byIP[a] >= l.perIP:
		return ReasonPerIP
	}
	l.open++
	l.byIP[a]++
	return ""
}

func (l *Limits) give(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[a]--; l.byIP[a] <= 0 {
		delete(l.byIP, a)
	}
}

// Open is how many admitted connections are open now.
func (l *Limits) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// reporter logs refusals once per interval rather than once each: a
// flood of refused connections must not flood the log.
type reporter struct {
	log      *slog.Logger
	msg      string
	interval time.Duration

	mu     sync.Mutex
	last   time.Time
	counts map[string]int
	sample string
}

func newReporter(log *slog.Logger, msg string) *reporter {
	return &reporter{log: log, msg: msg, interval: 10 * time.Second, counts: map[string]int{}}
}

func (r *reporter) add(reason string, from net.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[reason]++
	if r.sample == "" {
		r.sample = from.String()
	}
	now := time.Now()
	if now.Sub(r.last) < r.interval {
		return
	}
	args := []any{"since", r.last.Format(time.RFC3339), "example_remote", r.sample}
	if r.last.IsZero() {
		args[1] = "start"
	}
	for k, n := range r.counts {
		args = append(args, k, n)
	}
	r.log.Warn(r.msg, args...)
	r.last, r.counts, r.sample = now, map[string]int{}, ""
}
