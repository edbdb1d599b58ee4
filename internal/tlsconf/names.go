// Package tlsconf builds tls.Configs for both sides of the proxy from PEM
// files: CA chains, client/server certificates with encrypted keys, TLS
// versions and cipher suites by name, and reload of rotated files. It does
// not import internal/config, so config can use its parsers for validation.
package tlsconf

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strings"
)

// ParseVersion maps "1.2" or "1.3" (also "TLS1.2", "tls12", "TLSv1.2") to a
// tls.Version* constant. Empty means TLS 1.2, the safe default. TLS 1.0 and
// 1.1 are refused with an explanation: both are deprecated (RFC 8996) and
// no supported Kafka release needs them.
func ParseVersion(s string) (uint16, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	n = strings.TrimPrefix(strings.TrimPrefix(n, "tls"), "v")
	switch n {
	case "":
		return tls.VersionTLS12, nil
	case "1.0", "10", "1.1", "11":
		return 0, fmt.Errorf("%q is deprecated and insecure (RFC 8996); the minimum is 1.2", s)
	case "1.2", "12":
		return tls.VersionTLS12, nil
	case "1.3", "13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q is not a TLS version (want 1.2 or 1.3)", s)
}

// ParseCipherSuites maps IANA/Go names (e.g.
// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) to IDs. Insecure suites are
// rejected, so a copied list from an old broker config cannot weaken TLS
// silently. Nil in, nil out: Go's defaults apply.
func ParseCipherSuites(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return nil, nil
	}
	secure := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		secure[cs.Name] = cs.ID
	}
	insecure := map[string]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = true
	}
	var ids []uint16
	var bad []string
	for _, raw := range names {
		name := strings.ToUpper(strings.TrimSpace(raw))
		if id, ok := secure[name]; ok {
			ids = append(ids, id)
			continue
		}
		if insecure[name] {
			bad = append(bad, fmt.Sprintf("%q is insecure", raw))
		} else {
			bad = append(bad, fmt.Sprintf("%q is unknown", raw))
		}
	}
	if len(bad) > 0 {
		known := make([]string, 0, len(secure))
		for n := range secure {
			known = append(known, n)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("%s (supported: %s)", strings.Join(bad, ", "), strings.Join(known, ", "))
	}
	return ids, nil
}

// curves are the key exchange groups by the names the proxy we replace
// takes (X25519, P256, P384, P521), plus the standard names and Go's
// post-quantum hybrid.
var curves = map[string]tls.CurveID{
	"X25519": tls.X25519, "X25519MLKEM768": tls.X25519MLKEM768,
	"P256": tls.CurveP256, "P-256": tls.CurveP256, "SECP256R1": tls.CurveP256, "CURVEP256": tls.CurveP256,
	"P384": tls.CurveP384, "P-384": tls.CurveP384, "SECP384R1": tls.CurveP384, "CURVEP384": tls.CurveP384,
	"P521": tls.CurveP521, "P-521": tls.CurveP521, "SECP521R1": tls.CurveP521, "CURVEP521": tls.CurveP521,
}

// ParseCurves maps curve names (case-insensitive) to IDs, in preference
// order. Nil in, nil out: Go's defaults apply.
func ParseCurves(names []string) ([]tls.CurveID, error) {
	var ids []tls.CurveID
	var bad []string
	for _, raw := range names {
		if id, ok := curves[strings.ToUpper(strings.TrimSpace(raw))]; ok {
			ids = append(ids, id)
		} else {
			bad = append(bad, fmt.Sprintf("%q", raw))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("unknown curve %s (supported: X25519, X25519MLKEM768, P256, P384, P521)", strings.Join(bad, ", "))
	}
	return ids, nil
}
