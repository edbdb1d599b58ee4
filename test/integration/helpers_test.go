// Package integration runs real Go Kafka clients (franz-go, sarama,
// segmentio/kafka-go) through kafka-proxy in front of an in-process
// 3-broker kfake cluster. Every client gets a dialer that refuses any
// address that is not a proxy listener, so a missed rewrite fails the test.
package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/kafkatest"
)

const numRecords = 1000

// setup starts a cluster and a proxy; mutate may adjust the proxy config.
func setup(t *testing.T, mutate func(*config.Config), opts ...kfake.Opt) (*kafkatest.Cluster, *kafkatest.Proxy) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}, opts...)
	c, err := kafkatest.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p := kafkatest.StartProxy(t, c.ListenAddrs(), mutate)
	t.Cleanup(func() { p.CheckNoBypass(t) })
	return c, p
}

// franzClient is a franz-go client that can only reach the proxy.
func franzClient(t *testing.T, p *kafkatest.Proxy, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(p.Bootstrap),
		kgo.Dialer(p.DialContext),
		kgo.RetryTimeout(30 * time.Second),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// keyedValues is the set every test produces: key k-i, value v-i.
func keyedValues(n int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("k-%d", i)] = fmt.Sprintf("v-%d", i)
	}
	return m
}

// seen tracks consumed records and reports duplicates and mismatches.
type seen struct {
	mu   sync.Mutex
	got  map[string]string
	dups int
}

func newSeen() *seen { return &seen{got: map[string]string{}} }

func (s *seen) add(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.got[key]; ok {
		s.dups++
	}
	s.got[key] = value
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// check fails unless exactly want was consumed, each record once.
func (s *seen) check(t *testing.T, want map[string]string, allowDups bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != len(want) {
		t.Errorf("consumed %d distinct records, want %d", len(s.got), len(want))
	}
	for k, v := range want {
		if s.got[k] != v {
			t.Errorf("record %s: got %q, want %q", k, s.got[k], v)
			break
		}
	}
	if s.dups > 0 && !allowDups {
		t.Errorf("%d records consumed more than once", s.dups)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// requestsOf sums proxy_requests_total for one API key.
func requestsOf(t *testing.T, p *kafkatest.Proxy, key int) float64 {
	t.Helper()
	return requestsOfVersion(t, p, key, 0)
}

// requestsOfVersion sums proxy_requests_total for one API key at versions
// of at least minVersion.
func requestsOfVersion(t *testing.T, p *kafkatest.Proxy, key, minVersion int) float64 {
	t.Helper()
	mfs, err := p.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "proxy_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			keyOK, versionOK := false, false
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "api_key":
					keyOK = l.GetValue() == fmt.Sprint(key)
				case "api_version":
					v, _ := strconv.Atoi(l.GetValue())
					versionOK = v >= minVersion
				}
			}
			if keyOK && versionOK {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
