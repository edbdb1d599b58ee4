package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/pipeline"
	"github.com/kafka-proxy/kafka-proxy/internal/sni"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

// sniLookupInterval bounds how often clients asking for unknown broker
// names make the proxy ask the cluster for its brokers.
const sniLookupInterval = time.Second

// sniBrokers is where the SNI step sends connections: the bootstrap
// brokers in turn, and each node to the address the cluster gave it.
type sniBrokers struct {
	s    *Server
	next atomic.Uint64

	mu     sync.Mutex // one lookup at a time
	looked time.Time  // when the last lookup ended
}

// sniStep is the SNI admission step, with the names the topology
// advertises; nil when SNI routing is off. It warns of names the
// listener's certificate does not cover.
func (s *Server) sniStep(listenTLS *tls.Config) *pipeline.Step {
	names := s.topo.SNINames()
	if names == nil {
		return nil
	}
	warnUncoveredNames(listenTLS, names, s.log)
	step := sni.Step(names, &sniBrokers{s: s})
	return &step
}

// warnUncoveredNames logs the SNI names the listener's certificate does
// not cover: clients verifying the proxy's name would fail their handshake.
func warnUncoveredNames(listenTLS *tls.Config, names *sni.Names, log *slog.Logger) {
	if listenTLS == nil || listenTLS.GetConfigForClient == nil {
		return
	}
	cfg, err := listenTLS.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil || len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		return
	}
	for _, name := range []string{names.Bootstrap(), names.Broker(0)} {
		if err := leaf.VerifyHostname(name); err != nil {
			log.Warn("the listener certificate does not cover an SNI name: clients that verify it will fail", "name", name, "err", err)
		}
	}
}

func (b *sniBrokers) Bootstrap() string {
	ms := b.s.bootstrapMappings()
	return ms[int(b.next.Add(1)-1)%len(ms)].Upstream
}

// Broker finds the node's address in the topology, which learns it from
// every Metadata and other response the proxy rewrites. A node it has not
// seen (a proxy just started, or a replica behind the same load balancer
// whose clients learnt the names elsewhere) is looked up with a Metadata
// request to a bootstrap broker, at most once per sniLookupInterval.
func (b *sniBrokers) Broker(ctx context.Context, nodeID int32) (string, error) {
	if addr, ok := b.s.topo.NodeBroker(nodeID); ok {
		return addr, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if addr, ok := b.s.topo.NodeBroker(nodeID); ok {
		return addr, nil // learnt while this one waited
	}
	if time.Since(b.looked) < sniLookupInterval {
		return "", fmt.Errorf("the cluster does not list broker %d", nodeID)
	}
	err := b.lookup(ctx)
	b.looked = time.Now()
	if err != nil {
		return "", fmt.Errorf("broker %d is not known yet and the cluster's brokers could not be listed: %w", nodeID, err)
	}
	if addr, ok := b.s.topo.NodeBroker(nodeID); ok {
		return addr, nil
	}
	return "", fmt.Errorf("the cluster does not list broker %d", nodeID)
}

// lookup asks a bootstrap broker, as the default upstream identity, for
// the cluster's brokers (a Metadata request for no topics) and records
// them in the topology.
func (b *sniBrokers) lookup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var errs []error
	for _, m := range b.s.bootstrapMappings() {
		brokers, err := b.brokersFrom(ctx, m)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Upstream, err))
			continue
		}
		for _, br := range brokers {
			if _, _, err := b.s.topo.MapBroker(br.NodeID, br.Host, br.Port); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.Join(errs...)
}

func (b *sniBrokers) brokersFrom(ctx context.Context, m config.Mapping) ([]kmsg.MetadataResponseBroker, error) {
	up, err := b.s.upstreams.base.Dial(ctx, m.Upstream)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	rt := upstream.NewConnRoundTripper(up.Conn, b.s.cfg.Kafka.ClientID)
	versions := up.APIVersions
	if versions == nil {
		r, err := rt.RoundTrip(ctx, kmsg.NewPtrApiVersionsRequest()) // v0: every broker answers it
		if err != nil {
			return nil, err
		}
		versions = r.(*kmsg.ApiVersionsResponse)
	}
	req := kmsg.NewPtrMetadataRequest()
	version := int16(-1)
	for _, k := range versions.ApiKeys {
		if k.ApiKey == req.Key() {
			version = min(k.MaxVersion, req.MaxVersion())
		}
	}
	if version < 1 {
		return nil, errors.New("the broker offers no Metadata version that can ask for no topics (1 or later)")
	}
	req.SetVersion(version)
	req.Topics = []kmsg.MetadataRequestTopic{} // none; nil would be all of them
	r, err := rt.RoundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.(*kmsg.MetadataResponse).Brokers, nil
}
