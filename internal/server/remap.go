package server

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/proxy"
)

// mappingKey identifies a mapping: the same broker at another local or
// advertised address is another mapping.
func mappingKey(m config.Mapping) string {
	return m.Upstream + "," + m.Listen + "," + m.Advertised
}

// Remapped says what Remap changed.
type Remapped struct {
	Added, Removed int
}

// Remap puts new bootstrap and external mappings in force while running
// (a configuration reloaded on SIGHUP). A removed bootstrap mapping's
// listener stops accepting and its connections drain: each finishes the
// requests it has in flight, then closes, and its client reconnects
// through the mappings in force. An added one starts its listener. A
// listener that cannot be bound is reported, and the others are applied.
func (s *Server) Remap(bootstrap, external []config.Mapping) (Remapped, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return Remapped{}, errors.New("server is shutting down")
	}
	oldBoot, oldExt := s.bootstrap, s.external
	s.mu.Unlock()

	var r Remapped
	var errs []error
	has := func(list []config.Mapping, m config.Mapping) bool {
		return slices.ContainsFunc(list, func(o config.Mapping) bool { return mappingKey(o) == mappingKey(m) })
	}
	kept := slices.DeleteFunc(slices.Clone(oldBoot), func(m config.Mapping) bool { return !has(bootstrap, m) })
	for _, m := range oldBoot {
		if !has(bootstrap, m) {
			s.unlisten(mappingKey(m))
			s.topo.Unmap(m.Upstream)
			r.Removed++
		}
	}
	for _, m := range oldExt {
		if !has(external, m) {
			s.topo.Unmap(m.Upstream)
			r.Removed++
		}
	}
	for _, m := range external {
		if !has(oldExt, m) {
			if err := s.topo.Map(m); err != nil {
				errs = append(errs, fmt.Errorf("external mapping %s: %w", mappingKey(m), err))
				continue
			}
			r.Added++
		}
	}
	for _, m := range bootstrap {
		if has(oldBoot, m) {
			continue
		}
		if err := s.topo.Map(m); err != nil {
			errs = append(errs, fmt.Errorf("bootstrap mapping %s: %w", mappingKey(m), err))
			continue
		}
		addr, err := s.listenMapping(m)
		if err != nil {
			s.topo.Unmap(m.Upstream)
			errs = append(errs, fmt.Errorf("listen %s for broker %s: %w", m.Listen, m.Upstream, err))
			continue
		}
		s.topo.Bound(m, addr)
		kept = append(kept, m)
		r.Added++
	}
	s.mu.Lock()
	s.bootstrap, s.external = kept, external
	s.mu.Unlock()
	return r, errors.Join(errs...)
}

// unlisten closes the listener of a bootstrap mapping and drains the
// connections that came through it.
func (s *Server) unlisten(key string) {
	s.mu.Lock()
	var gone *listener
	s.listeners = slices.DeleteFunc(s.listeners, func(l *listener) bool {
		if l.mapping == key && gone == nil {
			gone = l
			return true
		}
		return false
	})
	var drain []*proxy.Session
	for sess, l := range s.sessions {
		if l == gone && gone != nil {
			drain = append(drain, sess)
			s.drained[sess] = true
		}
	}
	s.mu.Unlock()
	if gone == nil {
		return
	}
	_ = gone.Close()
	s.log.Info("listener removed: its connections drain", "listen", gone.Addr().String(), "broker", gone.upstream, "connections", len(drain))
	for _, sess := range drain {
		sess.Drain()
	}
}

// bootstrapMappings are the bootstrap mappings in force.
func (s *Server) bootstrapMappings() []config.Mapping {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bootstrap
}
