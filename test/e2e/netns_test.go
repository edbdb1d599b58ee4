package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// netns is a network namespace joined to the root namespace by one veth pair.
// Clients run inside it can reach only the /30 on the veth: the root side's
// address (where the proxy listens) and nothing else. The test brokers listen
// on 127.0.0.1 in the root namespace, which inside the namespace is the
// namespace's own loopback, so a client that bypasses the proxy fails.
type netns struct {
	name     string // ip netns name, kp-e2e-<pid>
	hostVeth string // root-namespace end of the veth pair
	hostIP   string // address of hostVeth: the proxy's listen IP
	nsIP     string // address of the namespace end
}

const netnsPrefix = "kp-e2e-"

func vethName(pid int) string { return fmt.Sprintf("kpe%dh", pid) } // <= 15 chars for any pid

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeStaleNamespaces deletes namespaces (and their veths) left behind by
// earlier runs of this suite that died before cleaning up, e.g. killed by
// `go test -timeout`. Only names of the form kp-e2e-<pid> whose pid no
// longer exists are touched, so a concurrent run is left alone.
func removeStaleNamespaces(ctx context.Context) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + netnsPrefix + `(\d+)\b`)
	for _, line := range strings.Split(string(out), "\n") {
		m := re.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		_ = ipCmd(ctx, "link", "del", vethName(pid))
		_ = ipCmd(ctx, "netns", "del", netnsPrefix+m[1])
	}
}

// pickSubnet returns the first 169.254.77.x/30 whose addresses are not in use
// in the root namespace (169.254.77.0/30 unless another run holds it).
func pickSubnet(ctx context.Context) (hostIP, nsIP string, err error) {
	out, err := exec.CommandContext(ctx, "ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		return "", "", fmt.Errorf("ip addr show: %w", err)
	}
	for base := 0; base < 256; base += 4 {
		h := fmt.Sprintf("169.254.77.%d", base+1)
		n := fmt.Sprintf("169.254.77.%d", base+2)
		if !strings.Contains(string(out), " "+h+"/") && !strings.Contains(string(out), " "+n+"/") {
			return h, n, nil
		}
	}
	return "", "", fmt.Errorf("no free /30 in 169.254.77.0/24")
}

// createNetns builds the namespace. On error everything it made is removed.
func createNetns() (_ *netns, err error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not root (euid %d): cannot create a network namespace", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("ip (iproute2) not found: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	removeStaleNamespaces(ctx)

	pid := os.Getpid()
	hostIP, nsIP, err := pickSubnet(ctx)
	if err != nil {
		return nil, err
	}
	n := &netns{name: fmt.Sprintf("%s%d", netnsPrefix, pid), hostVeth: vethName(pid), hostIP: hostIP, nsIP: nsIP}
	nsVeth := fmt.Sprintf("kpe%dn", pid)

	if err := ipCmd(ctx, "netns", "add", n.name); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.remove()
		}
	}()
	steps := [][]string{
		{"link", "add", n.hostVeth, "type", "veth", "peer", "name", nsVeth},
		{"link", "set", nsVeth, "netns", n.name},
		{"addr", "add", hostIP + "/30", "dev", n.hostVeth},
		{"link", "set", n.hostVeth, "up"},
		{"-n", n.name, "addr", "add", nsIP + "/30", "dev", nsVeth},
		{"-n", n.name, "link", "set", nsVeth, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// remove deletes the veth pair (both ends go together) and the namespace.
func (n *netns) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = ipCmd(ctx, "link", "del", n.hostVeth)
	if err := ipCmd(ctx, "netns", "del", n.name); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cleanup: %v\n", err)
	}
}

// wrap returns argv that runs argv inside the namespace.
func (n *netns) wrap(argv []string) []string {
	if n == nil {
		return argv
	}
	return append([]string{"ip", "netns", "exec", n.name}, argv...)
}
