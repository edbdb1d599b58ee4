package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/kafka-proxy/kafka-proxy/internal/config"
)

// userPass yields a username and password at each (re-)authentication, so
// a rotated password file or JAAS file is picked up without a restart.
type userPass func(ctx context.Context) (user, pass string, err error)

// newUserPass resolves where PLAIN/SCRAM credentials come from and checks
// once that they can be read, so a missing file fails at start-up.
func newUserPass(s config.SASL, method string, tlsOn bool, log *slog.Logger) (userPass, error) {
	var fn userPass
	switch {
	case s.JaasConfigFile != "":
		path := s.JaasConfigFile
		var mismatch sync.Once
		fn = func(context.Context) (string, string, error) {
			j, err := ReadJAASFile(path)
			if err != nil {
				return "", "", err
			}
			if !contains(j.Mechanisms, method) && method == config.MechanismPlain && !tlsOn {
				// A SCRAM password is never sent in the clear.
				return "", "", fmt.Errorf("jaas %s: %s serves %s; with --sasl-method PLAIN and no TLS its password would cross the network in clear text: set --sasl-method to %s or --tls-enable", path, j.LoginModule, strings.Join(j.Mechanisms, "/"), strings.Join(j.Mechanisms, " or "))
			}
			if !contains(j.Mechanisms, method) {
				// The proxy we replace takes only the username and
				// password from the file; so does this one, and says so.
				mismatch.Do(func() {
					log.Warn("setting ignored", "why", fmt.Sprintf("the JAAS login module %s in %s (--sasl-jaas-config-file) serves %s; its username and password are used with --sasl-method %s", j.LoginModule, path, strings.Join(j.Mechanisms, "/"), method))
				})
			}
			return j.Options["username"], j.Options["password"], nil
		}
	case s.PasswordFile != "":
		user, path := s.Username, s.PasswordFile
		fn = func(context.Context) (string, string, error) {
			data, err := os.ReadFile(path)
			if err != nil {
				return "", "", fmt.Errorf("sasl password file: %w", err)
			}
			pass := strings.TrimRight(string(data), "\r\n")
			if pass == "" {
				return "", "", fmt.Errorf("sasl password file %s is empty", path)
			}
			return user, pass, nil
		}
	case s.PasswordEnv != "":
		user, name := s.Username, s.PasswordEnv
		fn = func(context.Context) (string, string, error) {
			pass, ok := os.LookupEnv(name)
			if !ok || pass == "" {
				return "", "", fmt.Errorf("sasl password environment variable %s is not set", name)
			}
			return user, pass, nil
		}
	default:
		user, pass := s.Username, s.Password
		if user == "" || pass == "" {
			return nil, errors.New("sasl username and password are required")
		}
		fn = func(context.Context) (string, string, error) { return user, pass, nil }
	}
	if _, _, err := fn(context.Background()); err != nil {
		return nil, err
	}
	return fn, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readSecretFile reads a small secret file, trimming the trailing newline
// editors and `echo` add.
func readSecretFile(path, what string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return []byte(strings.TrimRight(string(data), "\r\n")), nil
}
