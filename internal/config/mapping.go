package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Mapping ties a broker address to the local address the proxy listens on
// and the address it advertises to clients (the listen address if empty).
type Mapping struct {
	Upstream   string `yaml:"upstream"`
	Listen     string `yaml:"listen"`
	Advertised string `yaml:"advertised,omitempty"`
}

// ParseMapping parses the flag form "remotehost:port,localhost:port[,advhost:advport]".
func ParseMapping(s string) (Mapping, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 && len(parts) != 3 {
		return Mapping{}, fmt.Errorf("%q: want remotehost:port,localhost:port[,advhost:advport]", s)
	}
	m := Mapping{Upstream: strings.TrimSpace(parts[0]), Listen: strings.TrimSpace(parts[1])}
	if len(parts) == 3 {
		m.Advertised = strings.TrimSpace(parts[2])
	}
	for _, a := range []string{m.Upstream, m.Listen, m.Advertised} {
		if a == "" && a == m.Advertised {
			continue
		}
		if _, _, err := SplitHostPort(a); err != nil {
			return Mapping{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return m, nil
}

// String is the flag form of the mapping.
func (m Mapping) String() string {
	if m.Advertised == "" {
		return m.Upstream + "," + m.Listen
	}
	return m.Upstream + "," + m.Listen + "," + m.Advertised
}

// AdvertisedAddress is the address clients are told for this broker.
func (m Mapping) AdvertisedAddress() string {
	if m.Advertised != "" {
		return m.Advertised
	}
	return m.Listen
}

// SplitHostPort splits "host:port" and checks the port is a valid number.
func SplitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: port %q is not a number in 0..65535", addr, portStr)
	}
	return host, port, nil
}
