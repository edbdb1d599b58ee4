package kafkatest

import (
	"path/filepath"
	"testing"

	"github.com/kafka-proxy/kafka-proxy/internal/auth"
	"github.com/kafka-proxy/kafka-proxy/internal/users"
)

// testBcryptCost keeps PLAIN checks fast in tests (bcrypt's minimum).
const testBcryptCost = 4

// WriteUsers writes a users file (PLAIN and both SCRAM credentials for
// each user name → password) into a test directory and returns its path.
func WriteUsers(t testing.TB, passwords map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.yaml")
	UpdateUsers(t, path, passwords)
	return path
}

// UpdateUsers replaces the users of path, as `kafka-proxy users` does.
func UpdateUsers(t testing.TB, path string, passwords map[string]string) {
	t.Helper()
	all := map[string]users.User{}
	for name, pw := range passwords {
		u, err := users.NewUser(name, pw, users.AllKinds, auth.MinScramIterations, testBcryptCost)
		if err != nil {
			t.Fatal(err)
		}
		all[name] = u
	}
	if err := users.WriteFile(path, all); err != nil {
		t.Fatal(err)
	}
}
