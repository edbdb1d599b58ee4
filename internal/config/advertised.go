package config

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/template"
)

// AdvertisedTemplate is --dynamic-advertised-listener as the proxy we
// replace reads it: a host, optionally with a fixed port, in which
// {{.brokerId}} (or {{.brokerID}}) stands for the broker's node id
// ("b-{{.brokerId}}.kafka.example.com:9092"). Without a port, the dynamic
// listener's own port is advertised.
type AdvertisedTemplate struct {
	tmpl *template.Template
}

// ParseAdvertisedTemplate parses s; a field other than brokerId is an
// error, found here rather than when the first broker is discovered.
func ParseAdvertisedTemplate(s string) (*AdvertisedTemplate, error) {
	t, err := template.New("dynamic-advertised-listener").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, err
	}
	a := &AdvertisedTemplate{tmpl: t}
	if _, _, err := a.Address(0, 1); err != nil {
		return nil, err
	}
	return a, nil
}

// Address is what a dynamic listener for nodeID, bound at port, advertises.
func (a *AdvertisedTemplate) Address(nodeID int32, port int) (string, int32, error) {
	var b bytes.Buffer
	if err := a.tmpl.Execute(&b, map[string]any{"brokerId": nodeID, "brokerID": nodeID}); err != nil {
		return "", 0, err
	}
	s := b.String()
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		// No port (or a bare IPv6 address): the listener's own.
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if host == "" || strings.ContainsAny(host, "[]/ ") {
			return "", 0, fmt.Errorf("%q is not a host or host:port", s)
		}
		return host, int32(port), nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || host == "" {
		return "", 0, fmt.Errorf("%q is not a host or host:port", s)
	}
	return host, int32(n), nil
}
