package config

import (
	"strings"
	"testing"
)

// --dynamic-advertised-listener: a host or host:port, with {{.brokerId}};
// without a port the listener's own is advertised.
func TestAdvertisedTemplate(t *testing.T) {
	for _, c := range []struct {
		in, host string
		port     int32
	}{
		{"proxy.example.com", "proxy.example.com", 40001},
		{"proxy.example.com:30000", "proxy.example.com", 30000},
		{"10.0.0.1", "10.0.0.1", 40001},
		{"10.0.0.1:30000", "10.0.0.1", 30000},
		{"b-{{.brokerId}}.kafka.example.com", "b-7.kafka.example.com", 40001},
		{"b-{{.brokerId}}.kafka.example.com:9092", "b-7.kafka.example.com", 9092},
		{"::1", "::1", 40001},
		{"[::1]:30000", "::1", 30000},
	} {
		a, err := ParseAdvertisedTemplate(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		host, port, err := a.Address(7, 40001)
		if err != nil || host != c.host || port != c.port {
			t.Errorf("%q for broker 7 on 40001 = %s %d, %v; want %s %d", c.in, host, port, err, c.host, c.port)
		}
	}
	for _, bad := range []string{"broker-{{.invalid}}", "b-{{.brokerId", "host:0", "host:99999", "host:port", ":9092", "a b"} {
		if _, err := ParseAdvertisedTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c := Default()
	c.Proxy.BootstrapServers = []Mapping{{Upstream: "b:9092", Listen: "127.0.0.1:0"}}
	c.Proxy.DynamicListeners.AdvertisedListener = "broker-{{.invalid}}"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "proxy.dynamicListeners.advertisedListener") {
		t.Errorf("Validate = %v", err)
	}
}
