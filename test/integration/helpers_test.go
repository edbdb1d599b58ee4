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
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

const numRecords = 1000

// setup starts a cluster and a proxy; mutate may adjust the proxy config.
func setup(t *testing.T, mutate func(*config.Config), opts ...kfake.Opt) (*memkafka.Cluster, *kafkatest.Proxy) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}, opts...)
	c, err := memkafka.NewCluster(opts...)
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
	return p.Client(t, opts...)
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
	return p.MetricSum(t, "proxy_requests_total", func(l map[string]string) bool {
		v, _ := strconv.Atoi(l["api_version"])
		return l["api_key"] == strconv.Itoa(key) && v >= minVersion
	})
}
