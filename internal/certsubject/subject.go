// Package certsubject is --proxy-listener-tls-required-client-subject: the
// client certificates a listener accepts, by subject, in the syntax of the
// proxy we replace:
//
//	s:/CN=[client-1]/O=[org]/C=[DE,PL]   exact values
//	r:/CN=[^client-.{2}$]/OU=[^team-]    regular expressions (RE2, unanchored)
//
// Fields are CN, C, S (state or province; ST is accepted too), L, O and OU.
// A field's list is compared with all of the certificate's values for that
// field: for s: the two sets must be equal (C=[DE,PL] wants a certificate
// with C=DE and C=PL); for r: the certificate must have as many values as
// there are patterns, each matching the pattern in its place. Fields not
// named are not checked. Inside the brackets, commas separate values except
// within nested [] or {} (so "{1,10}" stays one pattern), and a backslash
// keeps the next character (the backslash stays in the value). Several
// subjects (the flag is repeatable) are alternatives. Only the client's own
// certificate is checked, never the CAs of its chain.
package certsubject

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Subject is one parsed requirement.
type Subject struct {
	text     string
	regexp   bool
	values   map[string][]string // s: sorted values; r: patterns as written
	patterns map[string][]*regexp.Regexp
}

// fields maps the accepted names to the canonical one.
var fields = map[string]string{"CN": "CN", "C": "C", "S": "S", "ST": "S", "L": "L", "O": "O", "OU": "OU"}

// Parse parses one requirement.
func Parse(text string) (*Subject, error) {
	s := &Subject{text: text, values: map[string][]string{}, patterns: map[string][]*regexp.Regexp{}}
	var rest string
	switch {
	case strings.HasPrefix(text, "s:/"):
		rest = text[3:]
	case strings.HasPrefix(text, "r:/"):
		s.regexp, rest = true, text[3:]
	default:
		return nil, fmt.Errorf("client subject %q: want s:/FIELD=[values] or r:/FIELD=[patterns], repeated for more fields", text)
	}
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("client subject %q: want FIELD=[...] at %q", text, rest)
		}
		written := rest[:eq]
		name, ok := fields[written]
		if !ok {
			return nil, fmt.Errorf("client subject %q: unknown field %q (want CN, C, S, L, O or OU)", text, written)
		}
		if _, dup := s.values[name]; dup {
			return nil, fmt.Errorf("client subject %q: field %s given twice", text, name)
		}
		vals, n, err := parseList(rest[eq+1:])
		if err != nil {
			return nil, fmt.Errorf("client subject %q: %s: %w", text, written, err)
		}
		rest = rest[eq+1+n:]
		if rest != "" {
			if rest[0] != '/' {
				return nil, fmt.Errorf("client subject %q: want / after %s=[...]", text, written)
			}
			rest = rest[1:]
		}
		if s.regexp {
			for _, v := range vals {
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, fmt.Errorf("client subject %q: %s: %w", text, name, err)
				}
				s.patterns[name] = append(s.patterns[name], re)
			}
		} else {
			slices.Sort(vals)
		}
		s.values[name] = vals
	}
	if len(s.values) == 0 {
		return nil, fmt.Errorf("client subject %q: no field", text)
	}
	return s, nil
}

// parseList reads "[v1,v2,...]" from the start of s and returns the values
// and how many bytes it took.
func parseList(s string) ([]string, int, error) {
	if s == "" || s[0] != '[' {
		return nil, 0, errors.New("values must be in [brackets]")
	}
	var vals []string
	var cur strings.Builder
	depth := 0
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
		case c == '[' || c == '{':
			depth++
			cur.WriteByte(c)
		case (c == ']' || c == '}') && depth > 0:
			depth--
			cur.WriteByte(c)
		case c == ']':
			vals = append(vals, cur.String())
			return vals, i + 1, nil
		case c == ',' && depth == 0:
			vals = append(vals, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return nil, 0, errors.New("unterminated [")
}

// String is the requirement as configured.
func (s *Subject) String() string { return s.text }

func certValues(cert *x509.Certificate, field string) []string {
	n := cert.Subject
	switch field {
	case "CN":
		return []string{n.CommonName}
	case "C":
		return n.Country
	case "S":
		return n.Province
	case "L":
		return n.Locality
	case "O":
		return n.Organization
	}
	return n.OrganizationalUnit
}

// Check reports why cert does not meet s, or nil.
func (s *Subject) Check(cert *x509.Certificate) error {
	for field, want := range s.values {
		got := slices.Clone(certValues(cert, field))
		if !s.regexp {
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s is %q, want %q", field, got, want)
			}
			continue
		}
		pats := s.patterns[field]
		if len(got) != len(pats) {
			return fmt.Errorf("%s has %d values (%q), want %d matching %q", field, len(got), got, len(pats), want)
		}
		for i, v := range got {
			if !pats[i].MatchString(v) {
				return fmt.Errorf("%s %q does not match %q", field, v, want[i])
			}
		}
	}
	return nil
}

// Any is a list of alternatives; empty accepts every certificate.
type Any []*Subject

// ParseAll parses every requirement, reporting each problem.
func ParseAll(texts []string) (Any, error) {
	var out Any
	var errs []error
	for _, t := range texts {
		s, err := Parse(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// Check accepts cert if it meets one of the requirements.
func (a Any) Check(cert *x509.Certificate) error {
	if len(a) == 0 {
		return nil
	}
	var why []string
	for _, s := range a {
		err := s.Check(cert)
		if err == nil {
			return nil
		}
		why = append(why, fmt.Sprintf("%s: %v", s, err))
	}
	return fmt.Errorf("client certificate subject %q meets no required subject (%s)", cert.Subject.String(), strings.Join(why, "; "))
}
