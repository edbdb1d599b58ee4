package main

import (
	"os"
	"path/filepath"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
)

// tlsFiles are the PEM files of the TLS cluster: a CA, and the brokers'
// certificate (valid for 127.0.0.1) with its key.
type tlsFiles struct{ ca, cert, key string }

// writeTLSFiles issues a fresh CA and broker certificate into dir.
func writeTLSFiles(dir string) (tlsFiles, error) {
	ca, err := certs.NewRoot("bench CA", certs.Options{})
	if err != nil {
		return tlsFiles{}, err
	}
	srv, err := ca.IssueServer("bench broker", []string{"127.0.0.1", "localhost"}, certs.Options{})
	if err != nil {
		return tlsFiles{}, err
	}
	f := tlsFiles{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "broker.pem"), key: filepath.Join(dir, "broker-key.pem")}
	for path, pem := range map[string][]byte{f.ca: ca.CertPEM(), f.cert: srv.ChainPEM(), f.key: srv.KeyPEM()} {
		if err := os.WriteFile(path, pem, 0o600); err != nil {
			return tlsFiles{}, err
		}
	}
	return f, nil
}
