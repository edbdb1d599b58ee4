// Package plugintest builds the test plugin (internal/authplugin/testplugin)
// once per test binary, for the plugin host's tests and the proxy's.
package plugintest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kafka-proxy/kafka-proxy/internal/gobuild"
)

var (
	once sync.Once
	bin  string
	err  error
)

// Binary is the built test plugin; the first call builds it.
func Binary(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		var dir string
		if dir, err = os.MkdirTemp("", "kafka-proxy-testplugin"); err != nil {
			return
		}
		bin = filepath.Join(dir, "testplugin")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		err = gobuild.Build(ctx, "./internal/authplugin/testplugin", bin, false, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Remove deletes the built plugin; TestMain calls it after the tests.
func Remove() {
	if bin != "" {
		os.RemoveAll(filepath.Dir(bin))
	}
}
