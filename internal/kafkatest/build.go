package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildProxy compiles the module's ./cmd/kafka-proxy into out, for tests
// and the benchmark that need the real binary (process behaviour, signals,
// a separate process to measure). race builds with the race detector;
// ldflags, if any, are passed to the linker. It works from any directory
// inside the module.
func BuildProxy(ctx context.Context, out string, race bool, ldflags string) error {
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
	cmd := exec.CommandContext(ctx, gotool, append(args, "./cmd/kafka-proxy")...)
	cmd.Dir = filepath.Dir(mod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/kafka-proxy: %w\n%s", err, b)
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
