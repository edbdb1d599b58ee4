// Package gobuild compiles the module's own commands for tests and the
// benchmark that need a real binary. It imports nothing of the module, so
// any package's tests can use it.
package gobuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Build compiles the module's package pkg (./cmd/kafka-proxy, a test
// plugin) into out.
func Build(ctx context.Context, pkg, out string, race bool, ldflags string) error {
	gotool := GoTool()
	gomod, err := exec.CommandContext(ctx, gotool, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return errors.New("not inside the kafka-proxy module")
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.CommandContext(ctx, gotool, append(args, pkg)...)
	cmd.Dir = filepath.Dir(mod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// GoTool is the go command: the one on PATH, else the one under GOROOT
// (go test sets GOROOT in a test's environment).
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}
