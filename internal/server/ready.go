package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/status"
)

// readyInterval is how often the upstream handshake is checked once
// /ready has been asked; readyTimeout bounds one check.
const (
	readyInterval = 10 * time.Second
	readyTimeout  = 15 * time.Second
)

// readiness is the cached answer of Ready: whether the last check could
// complete the whole upstream handshake with a broker, and why not.
type readiness struct {
	start sync.Once
	first chan struct{} // closed after the first check
	mu    sync.Mutex
	err   error
}

// Ready reports nil when the proxy can complete the whole upstream
// handshake (TCP, TLS, SASL, as its default identity) with at least one
// bootstrap broker, else why not. A TCP dial alone would say ready while
// every client fails on a wrong CA or password. The first call starts a
// check every readyInterval until shutdown, so probes read a cached
// answer and never dial themselves.
func (s *Server) Ready(ctx context.Context) error {
	r := &s.ready
	r.start.Do(func() {
		r.first = make(chan struct{})
		go s.checkReadiness()
	})
	select {
	case <-r.first:
	case <-ctx.Done():
		return errors.New("the first upstream check has not finished")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (s *Server) checkReadiness() {
	r := &s.ready
	t := time.NewTicker(readyInterval)
	defer t.Stop()
	for first := true; ; first = false {
		err := s.handshakeAny()
		r.mu.Lock()
		was := r.err
		r.err = err
		r.mu.Unlock()
		switch {
		case err != nil && (first || was == nil):
			s.log.Warn("not ready: no broker completes the upstream handshake", "err", err)
		case err == nil && (first || was != nil):
			s.log.Info("ready: upstream handshake completed")
		}
		if first {
			close(r.first)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// handshakeAny dials every bootstrap broker at once as the default
// identity and reports nil at the first complete handshake, else every
// broker's failure.
func (s *Server) handshakeAny() error {
	ctx, cancel := context.WithTimeout(s.ctx, readyTimeout)
	defer cancel()
	brokers := s.bootstrapMappings()
	results := make(chan error, len(brokers))
	for _, m := range brokers {
		go func(addr string) {
			up, err := s.upstreams.base.Dial(ctx, addr)
			if err == nil {
				_ = up.Close()
			}
			results <- err
		}(m.Upstream)
	}
	var errs []error
	for range brokers {
		err := <-results
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StatusBrokers lists the brokers for the status page: each with its node
// id, local listener, advertised address and how its last dial went.
func (s *Server) StatusBrokers() []status.Broker {
	listeners := map[string]string{}
	for _, l := range s.Listeners() {
		listeners[strings.ToLower(l.Upstream)] = l.Addr.String()
	}
	var out []status.Broker
	for _, b := range s.topo.Brokers() {
		sb := status.Broker{NodeID: b.NodeID, Upstream: b.Upstream, Listener: listeners[strings.ToLower(b.Upstream)], Advertised: b.Advertised}
		if d, ok := s.metrics.LastDial(b.Upstream); ok {
			sb.Dialled, sb.LastDial, sb.Failure = true, d.At, d.Failure
		}
		out = append(out, sb)
	}
	return out
}
