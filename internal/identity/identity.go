// Package identity reads the per-client upstream identities
// (--upstream-identity-file): for a client principal, the SASL user or
// the client certificate the proxy presents to the brokers on that
// client's connections, so broker-side ACLs, quotas and audit logs still
// see each service rather than one shared proxy user.
//
// The file names secrets only by path (password files, JAAS files, key
// password files): the secrets themselves never sit in it.
package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// MaxFileSize bounds the identity file (read whole before parsing).
const MaxFileSize = 4 << 20

// Identity is what the proxy presents upstream for one client principal.
// A part left nil comes from the default upstream settings.
type Identity struct {
	// Principal is the client's principal as the ACLs name it,
	// "User:orders" or "User:CN=orders,O=acme".
	Principal string `yaml:"principal"`
	SASL      *SASL  `yaml:"sasl"`
	TLS       *TLS   `yaml:"tls"`
	// Where names the entry in errors and logs: "file: identities[2]".
	Where string `yaml:"-"`
}

// SASL is a PLAIN or SCRAM user for the brokers.
type SASL struct {
	// Method is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: the
	// default --sasl-method.
	Method   string `yaml:"method"`
	Username string `yaml:"username"`
	// PasswordFile is re-read at every (re-)authentication, as
	// --sasl-password-file is. JaasConfigFile is the alternative to
	// username and password file.
	PasswordFile   string `yaml:"passwordFile"`
	JaasConfigFile string `yaml:"jaasConfigFile"`
}

// TLS is a client certificate for mTLS towards the brokers; the CA and
// the other TLS settings stay the default ones.
type TLS struct {
	ClientCertFile        string `yaml:"clientCertFile"`
	ClientKeyFile         string `yaml:"clientKeyFile"`
	ClientKeyPasswordFile string `yaml:"clientKeyPasswordFile"`
}

type file struct {
	Identities []Identity `yaml:"identities"`
}

// Load reads and checks an identity file. Every problem is reported.
func Load(path string) ([]Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("upstream identity file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("upstream identity file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("upstream identity file %s: larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, data)
}

// Parse reads the identities of one YAML document:
//
//	identities:
//	  - principal: User:orders
//	    sasl: {method: SCRAM-SHA-512, username: svc-orders, passwordFile: /run/secrets/orders}
//	  - principal: User:CN=billing
//	    tls: {clientCertFile: billing.crt, clientKeyFile: billing.key}
func Parse(name string, data []byte) ([]Identity, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	seen := map[string]string{}
	for i := range f.Identities {
		id := &f.Identities[i]
		id.Where = fmt.Sprintf("%s: identities[%d]", name, i)
		if prev, dup := seen[id.Principal]; dup && id.Principal != "" {
			errs = append(errs, fmt.Errorf("%s: principal %s is already mapped at %s", id.Where, id.Principal, prev))
		}
		seen[id.Principal] = id.Where
		errs = append(errs, id.check()...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f.Identities, nil
}

func (id *Identity) check() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", id.Where, fmt.Sprintf(format, args...)))
	}
	name, ok := strings.CutPrefix(id.Principal, "User:")
	switch {
	case id.Principal == "":
		bad("principal is required (User:<name>)")
	case !ok || name == "":
		bad("principal %q: expected User:<name>", id.Principal)
	case name == "*":
		bad("principal User:* would map everyone: that is the default upstream identity")
	}
	if id.SASL == nil && id.TLS == nil {
		bad("needs sasl or tls (or both)")
	}
	if s := id.SASL; s != nil {
		switch method := strings.ToUpper(strings.TrimSpace(s.Method)); method {
		case "", config.MechanismPlain, config.MechanismScram256, config.MechanismScram512:
		default:
			bad("sasl.method %q: per-client identities are PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 users", s.Method)
		}
		switch {
		case s.JaasConfigFile != "" && (s.Username != "" || s.PasswordFile != ""):
			bad("sasl.jaasConfigFile is an alternative to username and passwordFile: set one or the other")
		case s.JaasConfigFile == "" && (s.Username == "" || s.PasswordFile == ""):
			bad("sasl needs username and passwordFile (or jaasConfigFile)")
		}
	}
	if t := id.TLS; t != nil && (t.ClientCertFile == "" || t.ClientKeyFile == "") {
		bad("tls needs clientCertFile and clientKeyFile")
	}
	return errs
}

// Apply returns the default upstream settings with this identity's parts
// in place of theirs. SASL is switched on for a SASL identity (with the
// default method unless it names one); a client certificate needs TLS
// towards the brokers (--tls-enable).
func (id Identity) Apply(k config.Kafka) (config.Kafka, error) {
	if s := id.SASL; s != nil {
		method := strings.ToUpper(strings.TrimSpace(s.Method))
		if method == "" {
			method = k.SASL.NormalizedMethod()
			if !k.SASL.Enable {
				return k, fmt.Errorf("%s: sasl.method is required when the default upstream has no SASL (--sasl-enable)", id.Where)
			}
			switch method {
			case config.MechanismPlain, config.MechanismScram256, config.MechanismScram512:
			default:
				return k, fmt.Errorf("%s: the default --sasl-method %s is not a user and password mechanism: set sasl.method", id.Where, method)
			}
		}
		k.SASL = config.SASL{Enable: true, Method: method, Username: s.Username, PasswordFile: s.PasswordFile, JaasConfigFile: s.JaasConfigFile}
	}
	if t := id.TLS; t != nil {
		if !k.TLS.Enable {
			return k, fmt.Errorf("%s: a client certificate needs TLS towards the brokers (--tls-enable)", id.Where)
		}
		k.TLS.ClientCertFile, k.TLS.ClientKeyFile = t.ClientCertFile, t.ClientKeyFile
		k.TLS.ClientKeyPassword, k.TLS.ClientKeyPasswordFile = "", t.ClientKeyPasswordFile
	}
	return k, nil
}

// String names the identity without secrets (it holds none, only paths).
func (id Identity) String() string {
	var parts []string
	if s := id.SASL; s != nil {
		user := s.Username
		if user == "" {
			user = "jaas:" + s.JaasConfigFile
		}
		parts = append(parts, "sasl user "+user)
	}
	if t := id.TLS; t != nil {
		parts = append(parts, "client certificate "+t.ClientCertFile)
	}
	return id.Principal + " as " + strings.Join(parts, " and ")
}

// Same reports whether other presents the same upstream identity (its
// place in the file aside), so that a reload keeps what did not change.
func (id Identity) Same(other Identity) bool {
	return id.Principal == other.Principal && equalPtr(id.SASL, other.SASL) && equalPtr(id.TLS, other.TLS)
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
