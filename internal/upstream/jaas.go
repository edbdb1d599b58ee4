package upstream

import (
	"fmt"
	"os"
	"strings"
	"unicode"
)

// JAAS is the credential part of a Java JAAS login configuration, as
// Kafka clients write it (sasl.jaas.config or a KafkaClient section):
//
//	KafkaClient {
//	  org.apache.kafka.common.security.scram.ScramLoginModule required
//	  username="alice"
//	  password="secret";
//	};
type JAAS struct {
	// LoginModule is the fully qualified class name.
	LoginModule string
	// Mechanisms are the SASL mechanisms the module serves: PLAIN for
	// PlainLoginModule, SCRAM-SHA-256/512 for ScramLoginModule.
	Mechanisms []string
	Options    map[string]string
}

// JAASError locates a parse problem.
type JAASError struct {
	File string
	Line int
	Msg  string
}

func (e *JAASError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("jaas line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("jaas %s:%d: %s", e.File, e.Line, e.Msg)
}

// ReadJAASFile parses path; see ParseJAAS.
func ReadJAASFile(path string) (JAAS, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return JAAS{}, fmt.Errorf("jaas: %w", err)
	}
	j, err := ParseJAAS(string(data))
	if je, ok := err.(*JAASError); ok {
		je.File = path
	}
	return j, err
}

// ParseJAAS reads the first login module entry: either a bare entry (the
// sasl.jaas.config property value) or one inside a named section such as
// KafkaClient { ... };. Only PlainLoginModule and ScramLoginModule are
// accepted, and both need username and password. Comments (// and /* */)
// are skipped. Errors carry line numbers and never echo option values.
func ParseJAAS(src string) (JAAS, error) {
	p := &jaasParser{src: src, line: 1}
	p.skipSpace()
	// Optional "Section {" wrapper.
	save, saveLine := p.pos, p.line
	name := p.word()
	p.skipSpace()
	inSection := false
	if name != "" && p.peek() == '{' {
		p.pos++
		inSection = true
		p.skipSpace()
	} else {
		p.pos, p.line = save, saveLine
	}
	startLine := p.line
	module := p.word()
	if module == "" {
		if p.pos >= len(p.src) {
			return JAAS{}, &JAASError{Line: p.line, Msg: "no login module entry found"}
		}
		return JAAS{}, p.errf("expected a login module class name, found %q", string(p.peek()))
	}
	j := JAAS{LoginModule: module, Options: map[string]string{}}
	switch {
	case strings.HasSuffix(module, ".PlainLoginModule") || module == "PlainLoginModule":
		j.Mechanisms = []string{"PLAIN"}
	case strings.HasSuffix(module, ".ScramLoginModule") || module == "ScramLoginModule":
		j.Mechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}
	default:
		return JAAS{}, &JAASError{Line: startLine, Msg: fmt.Sprintf("login module %q is not supported (want PlainLoginModule or ScramLoginModule)", module)}
	}
	p.skipSpace()
	flag := p.word()
	switch flag {
	case "required", "requisite", "sufficient", "optional":
	case "":
		return JAAS{}, p.errf("expected a control flag (required, requisite, sufficient or optional) after %s", module)
	default:
		return JAAS{}, p.errf("%q is not a control flag (want required, requisite, sufficient or optional)", flag)
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return JAAS{}, p.errf("unexpected end of input: missing ';' after the options of %s", module)
		}
		if p.peek() == ';' {
			p.pos++
			break
		}
		key := p.word()
		if key == "" {
			return JAAS{}, p.errf("expected an option name, found %q", string(p.peek()))
		}
		p.skipSpace()
		if p.peek() != '=' {
			return JAAS{}, p.errf("expected '=' after option %s", key)
		}
		p.pos++
		p.skipSpace()
		optLine := p.line
		val, err := p.value(key)
		if err != nil {
			return JAAS{}, err
		}
		if _, dup := j.Options[key]; dup {
			return JAAS{}, &JAASError{Line: optLine, Msg: fmt.Sprintf("option %s is set twice", key)}
		}
		j.Options[key] = val
	}
	if inSection {
		p.skipSpace()
		if p.peek() != '}' {
			// Further entries in the section are ignored, as the first
			// matching module is the one Kafka clients use.
			if i := strings.IndexByte(p.src[p.pos:], '}'); i < 0 {
				return JAAS{}, p.errf("missing '}' to close section %s", name)
			}
		}
	}
	for _, k := range []string{"username", "password"} {
		if j.Options[k] == "" {
			return JAAS{}, &JAASError{Line: startLine, Msg: fmt.Sprintf("%s needs a non-empty %s option", module, k)}
		}
	}
	return j, nil
}

type jaasParser struct {
	src  string
	pos  int
	line int
}

func (p *jaasParser) errf(format string, args ...any) error {
	return &JAASError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func (p *jaasParser) peek() byte {
	if p.pos >= len(p.src) {
		return 0
	}
	return p.src[p.pos]
}

func (p *jaasParser) skipSpace() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case strings.HasPrefix(p.src[p.pos:], "//"), c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case strings.HasPrefix(p.src[p.pos:], "/*"):
			end := strings.Index(p.src[p.pos+2:], "*/")
			if end < 0 {
				p.pos = len(p.src)
				return
			}
			p.line += strings.Count(p.src[p.pos:p.pos+2+end], "\n")
			p.pos += end + 4
		default:
			return
		}
	}
}

func (p *jaasParser) word() string {
	start := p.pos
	for p.pos < len(p.src) {
		r := rune(p.src[p.pos])
		if r == '.' || r == '_' || r == '-' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

// value reads a double-quoted string (with \" and \\ escapes) or a bare
// word. The value never appears in errors: it may be a password.
func (p *jaasParser) value(key string) (string, error) {
	if p.peek() != '"' {
		w := p.word()
		if w == "" {
			return "", p.errf("option %s: expected a quoted value", key)
		}
		return w, nil
	}
	startLine := p.line
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\\':
			if p.pos+1 >= len(p.src) {
				return "", &JAASError{Line: startLine, Msg: fmt.Sprintf("option %s: unterminated quoted value", key)}
			}
			b.WriteByte(p.src[p.pos+1])
			p.pos += 2
			continue
		case '"':
			p.pos++
			return b.String(), nil
		case '\n':
			p.line++
		}
		b.WriteByte(c)
		p.pos++
	}
	return "", &JAASError{Line: startLine, Msg: fmt.Sprintf("option %s: unterminated quoted value", key)}
}
