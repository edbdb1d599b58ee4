// Package users is the proxy's own credential store for local SASL
// termination: a YAML file of users with a bcrypt hash for PLAIN and
// salted SCRAM-SHA-256/512 credentials, never a password. The
// `kafka-proxy users` commands write it; a running proxy picks up changes
// at the next authentication (see Store).
package users

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
)

// Credential kinds a user may hold, as the file names them.
const (
	KindPlain       = "plain"
	KindScramSHA256 = "scram-sha-256"
	KindScramSHA512 = "scram-sha-512"
)

// AllKinds is every kind, the default of `users add`.
var AllKinds = []string{KindPlain, KindScramSHA256, KindScramSHA512}

// Limits that bound what a file may make the proxy do or allocate.
const (
	// MaxFileSize bounds the file read: a million users fit comfortably.
	MaxFileSize = 256 << 20
	// MaxNameLength bounds a user name (Kafka principals are short).
	MaxNameLength = 255
	// MaxPasswordLength is bcrypt's limit: longer passwords would be
	// silently truncated, so they are refused.
	MaxPasswordLength = 72
	// MaxScramIterations bounds the work one SCRAM authentication costs
	// the client (and what a broken file can ask of it).
	MaxScramIterations = 1 << 20
	// DefaultBcryptCost is bcrypt's default; every PLAIN authentication
	// pays it once.
	DefaultBcryptCost = bcrypt.DefaultCost
)

// User is one user's stored credentials.
type User struct {
	Name string
	// Plain is a bcrypt hash of the password, for PLAIN; empty if the user
	// may not use PLAIN.
	Plain []byte
	// Scram holds credentials by kind (KindScramSHA256, KindScramSHA512).
	Scram map[string]auth.ScramCredentials
}

// Kinds lists the credential kinds u holds, in AllKinds order.
func (u User) Kinds() []string {
	var out []string
	if len(u.Plain) > 0 {
		out = append(out, KindPlain)
	}
	for _, k := range []string{KindScramSHA256, KindScramSHA512} {
		if _, ok := u.Scram[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// file is the YAML shape.
type file struct {
	Users []fileUser `yaml:"users"`
}

type fileUser struct {
	Name        string     `yaml:"name"`
	Plain       string     `yaml:"plain,omitempty"`
	ScramSHA256 *fileScram `yaml:"scram-sha-256,omitempty"`
	ScramSHA512 *fileScram `yaml:"scram-sha-512,omitempty"`
}

type fileScram struct {
	Salt       string `yaml:"salt"`
	Iterations int    `yaml:"iterations"`
	StoredKey  string `yaml:"storedKey"`
	ServerKey  string `yaml:"serverKey"`
}

// header opens every file the commands write.
const header = "# kafka-proxy users file: written by `kafka-proxy users add|delete`.\n" +
	"# It holds bcrypt hashes and SCRAM keys, never a password; keep it private all the same.\n"

// CheckName reports whether name can be a user: non-empty, at most
// MaxNameLength bytes of UTF-8 with no control characters and no space at
// either end.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > MaxNameLength:
		return fmt.Errorf("user name of %d bytes is longer than %d", len(name), MaxNameLength)
	case !utf8.ValidString(name):
		return errors.New("user name is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("user name %q starts or ends with a space", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("user name %q holds a control character", name)
	}
	return nil
}

// Parse decodes a users file. Every problem is reported with the user's
// position; unknown keys are errors, so a typo cannot drop a credential.
func Parse(data []byte) (map[string]User, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("users file of %d bytes is larger than %d", len(data), MaxFileSize)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // EOF: empty, or comments only
		return nil, fmt.Errorf("users file: %w", err)
	}
	out := make(map[string]User, len(f.Users))
	var errs []error
	for i, fu := range f.Users {
		u, err := fu.decode()
		if err != nil {
			errs = append(errs, fmt.Errorf("users[%d] (%q): %w", i, fu.Name, err))
			continue
		}
		if _, dup := out[u.Name]; dup {
			errs = append(errs, fmt.Errorf("users[%d]: user %q listed twice", i, u.Name))
			continue
		}
		out[u.Name] = u
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (fu fileUser) decode() (User, error) {
	if err := CheckName(fu.Name); err != nil {
		return User{}, err
	}
	u := User{Name: fu.Name, Scram: map[string]auth.ScramCredentials{}}
	if fu.Plain != "" {
		if _, err := bcrypt.Cost([]byte(fu.Plain)); err != nil {
			return User{}, fmt.Errorf("plain: not a bcrypt hash: %w", err)
		}
		u.Plain = []byte(fu.Plain)
	}
	for kind, fs := range map[string]*fileScram{KindScramSHA256: fu.ScramSHA256, KindScramSHA512: fu.ScramSHA512} {
		if fs == nil {
			continue
		}
		c, err := fs.decode(kind)
		if err != nil {
			return User{}, fmt.Errorf("%s: %w", kind, err)
		}
		u.Scram[kind] = c
	}
	if len(u.Kinds()) == 0 {
		return User{}, errors.New("no credentials (plain, scram-sha-256 or scram-sha-512)")
	}
	return u, nil
}

func (fs fileScram) decode(kind string) (auth.ScramCredentials, error) {
	size := 32
	if kind == KindScramSHA512 {
		size = 64
	}
	b64 := func(field, s string, want int) ([]byte, error) {
		b, err := base64.StdEncoding.DecodeString(s)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %w", field, err)
		case len(b) == 0:
			return nil, fmt.Errorf("%s: empty", field)
		case want > 0 && len(b) != want:
			return nil, fmt.Errorf("%s: %d bytes, want %d", field, len(b), want)
		}
		return b, nil
	}
	var c auth.ScramCredentials
	var err error
	if c.Salt, err = b64("salt", fs.Salt, 0); err != nil {
		return c, err
	}
	if fs.Iterations < auth.MinScramIterations || fs.Iterations > MaxScramIterations {
		return c, fmt.Errorf("iterations %d: want %d to %d", fs.Iterations, auth.MinScramIterations, MaxScramIterations)
	}
	c.Iterations = fs.Iterations
	if c.StoredKey, err = b64("storedKey", fs.StoredKey, size); err != nil {
		return c, err
	}
	if c.ServerKey, err = b64("serverKey", fs.ServerKey, size); err != nil {
		return c, err
	}
	return c, nil
}

// Encode writes users as a file, sorted by name.
func Encode(users map[string]User) ([]byte, error) {
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	slices.Sort(names)
	var f file
	for _, n := range names {
		u := users[n]
		fu := fileUser{Name: n, Plain: string(u.Plain)}
		enc := func(c auth.ScramCredentials) *fileScram {
			return &fileScram{
				Salt: base64.StdEncoding.EncodeToString(c.Salt), Iterations: c.Iterations,
				StoredKey: base64.StdEncoding.EncodeToString(c.StoredKey), ServerKey: base64.StdEncoding.EncodeToString(c.ServerKey),
			}
		}
		if c, ok := u.Scram[KindScramSHA256]; ok {
			fu.ScramSHA256 = enc(c)
		}
		if c, ok := u.Scram[KindScramSHA512]; ok {
			fu.ScramSHA512 = enc(c)
		}
		f.Users = append(f.Users, fu)
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	e := yaml.NewEncoder(&buf)
	e.SetIndent(2)
	if err := e.Encode(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), e.Close()
}

// NewUser derives the stored credentials of the given kinds for password.
func NewUser(name, password string, kinds []string, iterations, bcryptCost int) (User, error) {
	if err := CheckName(name); err != nil {
		return User{}, err
	}
	switch {
	case password == "":
		return User{}, errors.New("empty password")
	case len(kinds) == 0:
		return User{}, errors.New("no credential kinds")
	case iterations < auth.MinScramIterations || iterations > MaxScramIterations:
		return User{}, fmt.Errorf("scram iterations %d: want %d to %d", iterations, auth.MinScramIterations, MaxScramIterations)
	}
	u := User{Name: name, Scram: map[string]auth.ScramCredentials{}}
	for _, k := range kinds {
		switch k {
		case KindPlain:
			if len(password) > MaxPasswordLength {
				return User{}, fmt.Errorf("password of %d bytes is longer than bcrypt's %d (PLAIN)", len(password), MaxPasswordLength)
			}
			h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
			if err != nil {
				return User{}, fmt.Errorf("plain: %w", err)
			}
			u.Plain = h
		case KindScramSHA256, KindScramSHA512:
			c, err := auth.NewScramCredentials(strings.ToUpper(k), password, iterations)
			if err != nil {
				return User{}, err
			}
			u.Scram[k] = c
		default:
			return User{}, fmt.Errorf("unknown credential kind %q (want %s)", k, strings.Join(AllKinds, ", "))
		}
	}
	return u, nil
}

// ReadFile reads and parses path; a missing file is an empty store when
// missingOK.
func ReadFile(path string, missingOK bool) (map[string]User, error) {
	data, err := readBounded(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return map[string]User{}, nil
	}
	if err != nil {
		return nil, err
	}
	u, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// readBounded reads a file, refusing one above MaxFileSize before reading
// it.
func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes is larger than %d", path, st.Size(), MaxFileSize)
	}
	return os.ReadFile(path)
}

// WriteFile replaces path with users atomically (a temporary file in the
// same directory, renamed over it), readable by its owner only, so a
// running proxy never reads half a file.
func WriteFile(path string, users map[string]User) error {
	data, err := Encode(users)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
