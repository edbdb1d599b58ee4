package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kafka-proxy/kafka-proxy/internal/clientauth"
	"github.com/kafka-proxy/kafka-proxy/internal/config"
	"github.com/kafka-proxy/kafka-proxy/internal/identity"
	"github.com/kafka-proxy/kafka-proxy/internal/topology"
	"github.com/kafka-proxy/kafka-proxy/internal/upstream"
)

// Check does what New does before anything listens — the listener's
// certificate and key, the brokers' CA, client certificate, key password,
// SASL credentials and first token, the upstream identities, the
// mappings, the admission steps, local authentication, the audit log's
// file and the ACL files — on a validated configuration, and reports
// every problem instead of stopping at the first (kafka-proxy validate).
// It starts nothing that outlives it and writes no file.
func Check(cfg config.Config) []error {
	quiet := slog.New(slog.DiscardHandler)
	var errs []error
	listenTLS, err := listenerTLS(cfg.Proxy.TLS, quiet)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, upstream.Check(cfg.Kafka, quiet)...)
	if cfg.Kafka.IdentityFile != "" {
		ids, err := identity.Load(cfg.Kafka.IdentityFile)
		if err != nil {
			errs = append(errs, err)
		}
		for _, id := range ids {
			own, err := id.Apply(cfg.Kafka)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, e := range upstream.Check(own, quiet) {
				errs = append(errs, fmt.Errorf("%s (%s): %w", id.Where, id.Principal, e))
			}
		}
	}
	if _, err := topology.New(cfg.Proxy, func(string, string) (net.Addr, error) { return nil, errors.New("not listening") }, quiet); err != nil {
		errs = append(errs, err)
	}
	if _, err := admissionSteps(cfg.Proxy, listenTLS, nil, nil, nopRejected{}, quiet); err != nil {
		errs = append(errs, err)
	}
	if gw, err := newGatewayServer(cfg.Proxy.Gateway, quiet); err != nil {
		errs = append(errs, err)
	} else {
		gw.close()
	}
	if cfg.Auth.Local.Enable {
		if g, err := clientauth.New(cfg.Auth.Local, quiet, nil); err != nil {
			errs = append(errs, err)
		} else {
			g.Close()
		}
	}
	if err := checkAuditLog(cfg.Audit.Log); err != nil {
		errs = append(errs, err)
	}
	if cfg.ACL.Enabled() {
		if _, err := openACLs(cfg.ACL, quiet); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// nopRejected counts nothing: Check accepts no connection.
type nopRejected struct{}

func (nopRejected) Rejected(string, string) {}

// checkAuditLog reports whether the audit trail's file could be opened
// for appending, without creating it.
func checkAuditLog(path string) error {
	if path == "" || path == "stdout" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("audit log %s: cannot create it in %s: %w", path, dir, err)
	}
	return nil
}
