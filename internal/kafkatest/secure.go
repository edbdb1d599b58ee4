package kafkatest

import (
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/certs"
	"github.com/kafka-proxy/kafka-proxy/internal/memkafka"
)

// StartSecureCluster starts a memkafka cluster in mode (files under
// t.TempDir()) and closes it when t ends. The MSK modes set AWS_*
// environment variables with t.Setenv, so tests using them cannot run in
// parallel.
func StartSecureCluster(t testing.TB, mode memkafka.SecurityMode, opts ...memkafka.SecureOption) *memkafka.SecureCluster {
	t.Helper()
	c, err := memkafka.NewSecureCluster(t.TempDir(), mode, append([]memkafka.SecureOption{memkafka.WithSetenv(t.Setenv)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// IssueClientCert is c.WriteClientCert failing t on error. Tests use it to
// rotate or expire the proxy's certificate.
func IssueClientCert(t testing.TB, c *memkafka.SecureCluster, cn string, o certs.Options, format certs.KeyFormat, password string) certs.Files {
	t.Helper()
	files, err := c.WriteClientCert(cn, o, format, password)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// WriteToken is c.WriteTokenFile failing t on error.
func WriteToken(t testing.TB, c *memkafka.SecureCluster, subject string, ttl time.Duration) string {
	t.Helper()
	tok, err := c.WriteTokenFile(subject, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
