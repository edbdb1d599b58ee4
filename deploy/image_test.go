package deploy_test

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stage is one FROM of a Dockerfile and the instructions under it.
type stage struct {
	from         string
	instructions []string // "RUN ...", "USER ...", continuation lines joined
}

func parseDockerfile(t *testing.T, file string) []stage {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var pending string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		word, _, _ := strings.Cut(line, " ")
		if strings.EqualFold(word, "FROM") {
			stages = append(stages, stage{from: line})
			continue
		}
		if len(stages) == 0 {
			if strings.EqualFold(word, "ARG") {
				continue
			}
			t.Fatalf("%s: %q before the first FROM", file, line)
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// TestDockerfile: deploy/Dockerfile is multi-stage; the build stage
// cross-compiles a static binary (no cgo, no build paths, version stamped,
// any GOARCH); the final image is empty but for the binary and CA
// certificates (no shell: nothing RUNs in it), runs as a non-root user,
// and starts the binary in exec form. Every base image names its tag.
// dockerfilelint, installed by the test-dependency script, then lints it.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	image := regexp.MustCompile(`(?i)^FROM(?:\s+--platform=\S+)?\s+(\S+)`)
	for _, s := range stages {
		m := image.FindStringSubmatch(s.from)
		if m == nil {
			t.Fatalf("cannot read %q", s.from)
		}
		if m[1] != "scratch" && !strings.Contains(m[1], ":") && !strings.Contains(m[1], "@sha256:") {
			t.Errorf("%q: the base image names no tag", s.from)
		}
	}
	build := strings.Join(stages[0].instructions, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "GOARCH=$TARGETARCH", "internal/cli.Version=${VERSION}", "./cmd/kafka-proxy"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build stage does not set %s", want)
		}
	}
	final := stages[len(stages)-1]
	if !strings.EqualFold(strings.TrimSpace(final.from), "FROM scratch") {
		t.Errorf("final stage %q, want FROM scratch (no shell, no package manager)", final.from)
	}
	var user, entry string
	for _, in := range final.instructions {
		word, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(word) {
		case "RUN":
			t.Errorf("the final stage runs %q: it has no shell", in)
		case "USER":
			user = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			entry = strings.TrimSpace(rest)
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q, want a non-root numeric user (runAsNonRoot checks the number)", user)
	}
	if entry != `["/kafka-proxy"]` {
		t.Errorf("ENTRYPOINT %s, want the binary in exec form", entry)
	}

	lint := filepath.Join("..", "test", "e2e", "node_modules", ".bin", "dockerfilelint")
	if _, err := os.Stat(lint); err != nil {
		if os.Getenv("KAFKA_PROXY_E2E") != "" {
			t.Fatalf("dockerfilelint not installed (scripts/install-test-deps.sh): %v", err)
		}
		t.Skip("dockerfilelint not installed: run scripts/install-test-deps.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, lint, "Dockerfile").CombinedOutput(); err != nil {
		t.Errorf("dockerfilelint: %v\n%s", err, out)
	}
}

// TestStaticBinary: the binary built as the Dockerfile builds it links
// nothing dynamically, and runs in an empty root directory (as in the
// scratch image): it prints its version and validates a configuration.
func TestStaticBinary(t *testing.T) {
	f, err := elf.Open(proxyBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %v: the binary is linked dynamically", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("imports %v", libs)
	}
	f.Close()

	if os.Geteuid() != 0 {
		if os.Getenv("KAFKA_PROXY_E2E") != "" {
			t.Fatal("running in an empty root directory needs root (chroot)")
		}
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	data, err := os.ReadFile(proxyBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "kafka-proxy"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/kafka-proxy", args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		cmd.Dir = "/"
		cmd.Env = []string{}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kafka-proxy %s in an empty root as user 65532: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("version"); strings.TrimSpace(out) != "kafka-proxy test" {
		t.Errorf("version: %q, want the stamped version", out)
	}
	if out := run("validate", "--bootstrap-server-mapping", "kafka-0:9092,127.0.0.1:32400", "--log-format", "json"); !strings.Contains(out, "configuration is valid") {
		t.Errorf("validate: %q", out)
	}
}
