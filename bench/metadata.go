package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataRequests is how many full Metadata requests one variant answers
// per round (one at a time, for CPU and latency); metadataConcurrent is how
// many clients then refresh at once (for peak memory).
const (
	metadataRequests   = 200
	metadataConcurrent = 50
)

// MetadataCost is one variant's full-Metadata figures in a round.
type MetadataCost struct {
	Requests     int
	Bytes        int           // response size
	MiddleCPU    time.Duration // total over Requests; 0 for direct
	P50          time.Duration
	PeakRSS      int64 // the middle's, during the concurrent refreshes
	ConcurrentOK int   // refreshes of the concurrent burst that succeeded
}

// createMetadataTopics makes the cluster hold topics × partitions, so a
// full Metadata response is as big as a real cluster's.
func createMetadataTopics(ctx context.Context, seed string, topics, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		return err
	}
	defer cl.Close()
	for start := 0; start < topics; start += 500 {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		for i := start; i < min(start+500, topics); i++ {
			t := kmsg.NewCreateTopicsRequestTopic()
			t.Topic, t.NumPartitions, t.ReplicationFactor = fmt.Sprintf("bench-meta-%05d", i), int32(partitions), 1
			req.Topics = append(req.Topics, t)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			if t.ErrorCode != 0 && t.ErrorCode != 36 { // TOPIC_ALREADY_EXISTS
				return fmt.Errorf("create %s: error %d", t.Topic, t.ErrorCode)
			}
		}
	}
	return nil
}

// fullMetadata asks for every topic on its own connection's client.
func fullMetadata(ctx context.Context, cl *kgo.Client) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest() // nil topics: all
	return req.RequestWith(ctx, cl)
}

// metadataPhase measures each variant's cost of full Metadata requests:
// the middle's CPU and the client's p50 over metadataRequests sequential
// requests, then its peak RSS while metadataConcurrent clients refresh
// at once.
func metadataPhase(ctx context.Context, vs []*variant, use func(*variant) error, wantTopics int) (map[string]MetadataCost, error) {
	out := map[string]MetadataCost{}
	for _, v := range vs {
		if err := use(v); err != nil {
			return out, err
		}
		check := &dialCheck{}
		cl, err := newClient(v, check)
		if err != nil {
			return out, err
		}
		warm, err := fullMetadata(ctx, cl)
		if err != nil || len(warm.Topics) < wantTopics {
			cl.Close()
			return out, fmt.Errorf("%s: warm-up metadata: %d topics, %v", v.name, topicsOf(warm), err)
		}
		var mc MetadataCost
		mc.Bytes = len(warm.AppendTo(nil))
		var lat []time.Duration
		cpu0 := middleCPU0(v)
		for range metadataRequests {
			start := time.Now()
			if _, err := fullMetadata(ctx, cl); err != nil {
				cl.Close()
				return out, fmt.Errorf("%s: metadata: %w", v.name, err)
			}
			lat = append(lat, time.Since(start))
		}
		mc.Requests = metadataRequests
		mc.MiddleCPU = middleCPU0(v) - cpu0
		slices.Sort(lat)
		mc.P50 = quantile(lat, 0.5)
		cl.Close()
		mc.PeakRSS, mc.ConcurrentOK, err = concurrentRefresh(ctx, v)
		if err == nil {
			err = check.verify(v.allowed)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", v.name, err)
		}
		out[v.name] = mc
	}
	return out, nil
}

func topicsOf(r *kmsg.MetadataResponse) int {
	if r == nil {
		return 0
	}
	return len(r.Topics)
}

func middleCPU0(v *variant) time.Duration {
	if v.middle == nil {
		return 0
	}
	return v.middle.cpu()
}

// concurrentRefresh connects metadataConcurrent clients, then has them all
// ask for full metadata at once, sampling the middle's RSS meanwhile.
func concurrentRefresh(ctx context.Context, v *variant) (int64, int, error) {
	var clients []*kgo.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range metadataConcurrent {
		cl, err := newClient(v, &dialCheck{})
		if err != nil {
			return 0, 0, err
		}
		if err := cl.Ping(ctx); err != nil {
			return 0, 0, fmt.Errorf("connect: %w", err)
		}
		clients = append(clients, cl)
	}
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v.middle != nil {
				peak = max(peak, v.middle.rss())
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := fullMetadata(ctx, cl); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	return peak, ok, nil
}
