package principal

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ruleSplitter is Kafka's SslPrincipalMapper.RULE_SPLITTER: a rule is
// DEFAULT or RULE:pattern/replacement/[LU], where pattern and replacement
// may contain commas and escaped slashes, so rules cannot be split on
// commas alone.
var ruleSplitter = regexp.MustCompile(`\s*((DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?).*?|(.*?))\s*(?:[,\n]\s*|$)`)

// Mapper is a parsed ssl.principal.mapping.rules value.
type Mapper struct {
	text  string
	rules []rule
}

type rule struct {
	isDefault   bool
	pattern     *regexp.Regexp // as written
	whole       *regexp.Regexp // anchored: Java's Matcher.matches()
	replacement string         // in regexp.Expand syntax
	lower       bool
	upper       bool
}

// ParseRules parses Kafka's ssl.principal.mapping.rules. An empty string
// means DEFAULT, as Kafka's default value does.
func ParseRules(text string) (*Mapper, error) {
	m := &Mapper{text: text}
	if strings.TrimSpace(text) == "" {
		text = "DEFAULT"
	}
	for _, g := range ruleSplitter.FindAllStringSubmatch(strings.TrimSpace(text), -1) {
		switch {
		case g[2] != "":
			m.rules = append(m.rules, rule{isDefault: true})
		case strings.HasPrefix(g[1], "RULE:"):
			if g[1] != "RULE:"+g[3]+"/"+g[4]+"/"+g[5] {
				return nil, fmt.Errorf("invalid principal mapping rule %q: text after RULE:pattern/replacement/[LU]", g[1])
			}
			r, err := newRule(g[3], g[4], g[5])
			if err != nil {
				return nil, fmt.Errorf("principal mapping rule %q: %w", g[1], err)
			}
			m.rules = append(m.rules, r)
		case g[6] != "":
			return nil, fmt.Errorf("invalid principal mapping rule %q: want DEFAULT or RULE:pattern/replacement/[LU]", g[6])
		}
	}
	if len(m.rules) == 0 {
		return nil, fmt.Errorf("principal mapping rules %q: no rule", text)
	}
	return m, nil
}

func newRule(pattern, replacement, flags string) (rule, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return rule{}, fmt.Errorf("pattern: %w", err)
	}
	whole, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return rule{}, fmt.Errorf("pattern: %w", err)
	}
	return rule{
		pattern:     re,
		whole:       whole,
		replacement: javaReplacement(replacement, re.NumSubexp()),
		lower:       flags == "L",
		upper:       flags == "U",
	}, nil
}

// javaReplacement turns a java.util.regex replacement into regexp.Expand
// syntax: $n (the longest number that names a group; Kafka escapes a $n
// beyond the groups into a literal), ${name}, and backslash escapes.
func javaReplacement(s string, groups int) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(s[i])
			}
		case c == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			n, j := int(s[i+1]-'0'), i+2
			for j < len(s) && s[j] >= '0' && s[j] <= '9' && n*10+int(s[j]-'0') <= groups {
				n, j = n*10+int(s[j]-'0'), j+1
			}
			if n > groups {
				b.WriteString("$$" + strconv.Itoa(n))
			} else {
				b.WriteString("${" + strconv.Itoa(n) + "}")
			}
			i = j - 1
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				b.WriteString("$$")
				continue
			}
			b.WriteString(s[i : i+end+1])
			i += end
		case c == '$':
			b.WriteString("$$")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// String is the rules as configured.
func (m *Mapper) String() string { return m.text }

// Name maps a distinguished name (as DistinguishedName writes it) to the
// principal's name with the first rule that applies, as Kafka does. No
// applicable rule is an error: Kafka then fails the connection's
// authentication.
func (m *Mapper) Name(dn string) (string, error) {
	for _, r := range m.rules {
		if r.isDefault {
			return dn, nil
		}
		if !r.whole.MatchString(dn) {
			continue
		}
		name := r.pattern.ReplaceAllString(dn, r.replacement)
		switch {
		case r.lower:
			name = strings.ToLower(name)
		case r.upper:
			name = strings.ToUpper(name)
		}
		return name, nil
	}
	return "", fmt.Errorf("no principal mapping rule applies to %q (rules %q)", dn, m.text)
}

// FromCertificate is the Kafka principal of a client presenting cert:
// "User:" and the mapped name of its subject.
func (m *Mapper) FromCertificate(cert *x509.Certificate) (string, error) {
	dn, err := DistinguishedName(cert.RawSubject)
	if err != nil {
		return "", err
	}
	name, err := m.Name(dn)
	if err != nil {
		return "", err
	}
	return "User:" + name, nil
}
