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

// mappingForm is the flag syntax, quoted in errors so an operator sees what
// was expected next to what was given.
const mappingForm = "remotehost:port,localhost:port[,advhost:advport]"

// ParseMapping parses the flag form "remotehost:port,localhost:port[,advhost:advport]".
// Each part is checked on its own, so the error says which part is wrong
// (an empty one included: "a:1,,b:2" must not silently drop a part).
func ParseMapping(s string) (Mapping, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 && len(parts) != 3 {
		return Mapping{}, fmt.Errorf("%q: want %s, got %d comma-separated parts", s, mappingForm, len(parts))
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	m := Mapping{Upstream: parts[0], Listen: parts[1]}
	if len(parts) == 3 {
		m.Advertised = parts[2]
	}
	roles := []struct {
		name  string
		addr  string
		check func(string) error
	}{
		{"remote address", m.Upstream, CheckDialAddr},
		{"local address", m.Listen, CheckListenAddr},
		{"advertised address", m.Advertised, CheckDialAddr},
	}
	for _, r := range roles[:len(parts)] {
		if r.addr == "" {
			return Mapping{}, fmt.Errorf("%q: %s is empty (want %s)", s, r.name, mappingForm)
		}
		if err := r.check(r.addr); err != nil {
			return Mapping{}, fmt.Errorf("%q: %s: %w", s, r.name, err)
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

// CheckListenAddr checks an address to bind: the host may be empty (all
// interfaces) and port 0 lets the kernel pick.
func CheckListenAddr(addr string) error {
	_, _, err := SplitHostPort(addr)
	return err
}

// CheckDialAddr checks an address something connects to (a broker, or an
// address advertised to clients): it needs a host and a port other than
// 0, which nothing can connect to. Without this, a typo such as
// "kafka:0" would only show up as failing client connections.
func CheckDialAddr(addr string) error {
	host, port, err := SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("address %q: host is empty", addr)
	}
	if port == 0 {
		return fmt.Errorf("address %q: port 0 cannot be connected to", addr)
	}
	return nil
}

// DialMapping makes the proxy dial To whenever it connects to the broker
// at From (--dial-address-mapping): a broker reachable only through a
// tunnel or another name. From is matched as the broker advertises it.
type DialMapping struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// ParseDialMapping parses the flag form "brokerhost:port,dialhost:port".
func ParseDialMapping(s string) (DialMapping, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return DialMapping{}, fmt.Errorf("%q: want brokerhost:port,dialhost:port, got %d comma-separated parts", s, len(parts))
	}
	m := DialMapping{From: strings.TrimSpace(parts[0]), To: strings.TrimSpace(parts[1])}
	for _, a := range []string{m.From, m.To} {
		if err := CheckDialAddr(a); err != nil {
			return DialMapping{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return m, nil
}

// String is the flag form.
func (m DialMapping) String() string { return m.From + "," + m.To }
