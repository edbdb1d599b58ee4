// Package principal names the client of a TLS connection as Kafka does:
// the certificate's subject written as Java's X500Principal.getName()
// writes it (RFC 2253), mapped by ssl.principal.mapping.rules, prefixed
// "User:". Operators copy rules from their brokers; the same rules must
// give the same principals here.
package principal

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// rfc2253Keywords are the attribute types X500Principal's RFC 2253 form
// writes by name; every other type is written as its OID and the value's
// DER in hex, as Java does (emailAddress too).
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// attributeSET is one RDN; encoding/asn1 reads a slice type named *SET as
// an ASN.1 SET.
type attributeSET []attribute

// DistinguishedName writes a certificate's raw subject (x509.Certificate.
// RawSubject) as Kafka's DEFAULT rule sees it: RDNs most specific first,
// comma separated, "+" inside a multi-valued RDN, no spaces.
func DistinguishedName(rawSubject []byte) (string, error) {
	var rdns []attributeSET
	rest, err := asn1.Unmarshal(rawSubject, &rdns)
	if err != nil {
		return "", fmt.Errorf("certificate subject: %w", err)
	}
	if len(rest) > 0 {
		return "", errors.New("certificate subject: trailing data")
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := a.Type.String()
			name, known := rfc2253Keywords[oid]
			s, isString := stringValue(a.Value)
			if !known || !isString {
				b.WriteString(oid)
				b.WriteString("=#")
				b.WriteString(hex.EncodeToString(a.Value.FullBytes))
				continue
			}
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(escape(s))
		}
	}
	return b.String(), nil
}

// stringValue decodes the directory string types.
func stringValue(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String, asn1.TagNumericString:
		return string(v.Bytes), true
	case 30: // BMPString: UTF-16BE
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString: UTF-32BE
		if len(v.Bytes)%4 != 0 {
			return "", false
		}
		var r []rune
		for i := 0; i < len(v.Bytes); i += 4 {
			r = append(r, rune(uint32(v.Bytes[i])<<24|uint32(v.Bytes[i+1])<<16|uint32(v.Bytes[i+2])<<8|uint32(v.Bytes[i+3])))
		}
		return string(r), true
	}
	return "", false
}

// escape applies RFC 2253's escapes as X500Principal does: the special
// characters anywhere, a leading '#' or space, a trailing space.
func escape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case strings.ContainsRune(",+\"\\<>;", r),
			i == 0 && (r == '#' || r == ' '),
			i == len(s)-1 && r == ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
