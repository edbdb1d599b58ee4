// Package deploy_test checks what deploy/ ships: the Kubernetes manifests
// and the Helm chart's output decode strictly into the Kubernetes API types,
// pass kafka-proxy's own validation, and follow the conventions the files
// promise (probes, security context, drain time, Prometheus annotations);
// the Dockerfile builds a static, non-root image; the binary it builds is
// static and runs in an empty root directory.
//
// A module of its own, so that the proxy's module does not depend on Helm
// and the Kubernetes API.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// proxyBin is kafka-proxy built from the parent module for this run.
var proxyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kafka-proxy-deploy")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	proxyBin = filepath.Join(dir, "kafka-proxy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	out, err := build(ctx, proxyBin, "test")
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build kafka-proxy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles kafka-proxy as deploy/Dockerfile does: no cgo, no build
// paths, the version stamped.
func build(ctx context.Context, out, version string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X github.com/kafka-proxy/kafka-proxy/internal/cli.Version="+version,
		"-o", out, "./cmd/kafka-proxy")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd.CombinedOutput()
}

// object is one manifest, decoded by its kind.
type object struct {
	kind, name string
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
}

// decodeAll strictly decodes every document of a multi-document YAML file
// into its Kubernetes type: an unknown or misspelt field is an error.
func decodeAll(t *testing.T, name string, data []byte) []object {
	t.Helper()
	var out []object
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s document %d: %v", name, i, err)
		}
		o := object{kind: head.Kind, name: head.Metadata.Name}
		var target any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			o.deployment = &appsv1.Deployment{}
			target = o.deployment
		case "v1 Service":
			o.service = &corev1.Service{}
			target = o.service
		case "policy/v1 PodDisruptionBudget":
			o.pdb = &policyv1.PodDisruptionBudget{}
			target = o.pdb
		case "monitoring.coreos.com/v1 ServiceMonitor":
			target = &serviceMonitor{}
		default:
			t.Fatalf("%s document %d: unexpected %s %s", name, i, head.APIVersion, head.Kind)
		}
		if err := strictDecode([]byte(doc), target); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v", name, head.Kind, head.Metadata.Name, err)
		}
		out = append(out, o)
	}
	return out
}

// strictDecode decodes a YAML document as the API server does: field names
// match case-sensitively, and an unknown or repeated field is an error.
func strictDecode(doc []byte, target any) error {
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(data, target)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// serviceMonitor is the part of the Prometheus Operator's type the chart
// writes; strict decoding rejects anything else.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// shape is what a set of manifests must be.
type shape struct {
	gateway bool
}

// check applies the conventions to one set of manifests and validates the
// proxy's arguments with the binary.
func check(t *testing.T, name string, objs []object, sh shape) {
	t.Helper()
	var deployments []*appsv1.Deployment
	var services []*corev1.Service
	var pdbs []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		switch {
		case o.deployment != nil:
			deployments = append(deployments, o.deployment)
		case o.service != nil:
			services = append(services, o.service)
		case o.pdb != nil:
			pdbs = append(pdbs, o.pdb)
		}
	}
	if len(deployments) != 1 {
		t.Fatalf("%s: %d Deployments, want 1", name, len(deployments))
	}
	d := deployments[0]
	pod := d.Spec.Template
	if ann := pod.Annotations; ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] == "" {
		t.Errorf("%s: pod annotations %v, want Prometheus scrape annotations", name, ann)
	}
	var proxy *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "kafka-proxy" {
			proxy = &pod.Spec.Containers[i]
		}
	}
	if proxy == nil {
		t.Fatalf("%s: no kafka-proxy container", name)
	}
	if !sh.gateway && len(pod.Spec.Containers) < 2 {
		t.Errorf("%s: a sidecar shares its pod with the application", name)
	}
	probe := func(p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s: probe %+v, want HTTP GET %s", name, p, path)
		}
	}
	probe(proxy.LivenessProbe, "/health")
	probe(proxy.ReadinessProbe, "/ready")
	sc := proxy.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: securityContext %+v, want non-root, read-only root, no privilege escalation", name, sc)
	}
	if proxy.Resources.Requests.Cpu().IsZero() || proxy.Resources.Requests.Memory().IsZero() || proxy.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v, want CPU and memory requests and a memory limit", name, proxy.Resources)
	}
	if len(proxy.Args) == 0 || proxy.Args[0] != "server" {
		t.Fatalf("%s: args %q, want kafka-proxy server and its flags", name, proxy.Args)
	}
	args := expand(t, name, proxy.Args[1:], proxy.Env)
	validate(t, name, inPod(args, mountRoot(t)))
	drain := flagValue(args, "--shutdown-drain-timeout", "30s")
	grace := time.Duration(derefInt(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	var preStop time.Duration
	if l := proxy.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	if dd, err := time.ParseDuration(drain); err != nil || grace <= preStop+dd {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not cover the preStop pause %v and the drain %s", name, grace, preStop, drain)
	}
	for _, v := range pod.Spec.Volumes {
		mounted := false
		for _, m := range proxy.VolumeMounts {
			mounted = mounted || m.Name == v.Name
		}
		if !mounted {
			t.Errorf("%s: volume %s is not mounted in the proxy", name, v.Name)
		}
	}
	for _, m := range proxy.VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("%s: %s is mounted writable", name, m.MountPath)
		}
	}
	if !sh.gateway {
		return
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("%s: a gateway runs 2+ replicas", name)
	}
	if len(services) != 1 || len(pdbs) != 1 {
		t.Fatalf("%s: %d Services and %d PodDisruptionBudgets, want one each", name, len(services), len(pdbs))
	}
	for k, v := range pdbs[0].Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("%s: the PodDisruptionBudget's selector %s=%s does not select the pods", name, k, v)
		}
	}
	for k, v := range services[0].Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("%s: the Service's selector %s=%s does not select the pods", name, k, v)
		}
	}
	// Every replica advertises the Service's address at a fixed port that
	// the Service and the container both expose.
	if !containsArg(args, "--dynamic-listeners-disable") {
		t.Errorf("%s: dynamic listeners would give replicas different ports", name)
	}
	for _, m := range flagValues(args, "--bootstrap-server-mapping") {
		parts := strings.Split(m, ",")
		if len(parts) != 3 {
			t.Errorf("%s: mapping %q advertises no address", name, m)
			continue
		}
		_, listenPort, _ := strings.Cut(parts[1], ":")
		advHost, advPort, _ := strings.Cut(parts[2], ":")
		if listenPort != advPort || !strings.HasPrefix(advHost, services[0].Name+".") {
			t.Errorf("%s: mapping %q does not advertise the Service %s at the port it listens on", name, m, services[0].Name)
		}
		if !servicePort(services[0], advPort) || !containerPort(proxy, advPort) {
			t.Errorf("%s: port %s of mapping %q is not exposed by the Service and the container", name, advPort, m)
		}
	}
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand replaces $(VAR) as the kubelet does, for variables the container
// defines (a Secret's value becomes a placeholder); a reference to an
// undefined variable would reach the proxy literally, which is an error.
func expand(t *testing.T, name string, args []string, env []corev1.EnvVar) []string {
	defined := map[string]string{}
	for _, e := range env {
		defined[e.Name] = e.Value
		if e.ValueFrom != nil {
			defined[e.Name] = secretValue
		}
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = envRef.ReplaceAllStringFunc(a, func(ref string) string {
			v, ok := defined[envRef.FindStringSubmatch(ref)[1]]
			if !ok {
				t.Errorf("%s: %s names a variable the container does not define", name, a)
			}
			return v
		})
	}
	return out
}

// validate runs kafka-proxy validate on the server flags.
func validate(t *testing.T, name string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, proxyBin, append([]string{"validate"}, args...)...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("configuration is valid")) || bytes.Contains(out, []byte("warning:")) {
		t.Errorf("%s: kafka-proxy validate %q: %v\n%s", name, args, err, out)
	}
}

func flagValues(args []string, flag string) []string {
	var out []string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

func flagValue(args []string, flag, def string) string {
	if v := flagValues(args, flag); len(v) > 0 {
		return v[len(v)-1]
	}
	return def
}

func containsArg(args []string, arg string) bool {
	for _, a := range args {
		if a == arg {
			return true
		}
	}
	return false
}

func servicePort(s *corev1.Service, port string) bool {
	for _, p := range s.Spec.Ports {
		if fmt.Sprint(p.Port) == port && (p.TargetPort.String() == port || p.TargetPort.IntValue() == 0 && p.TargetPort.StrVal == "") {
			return true
		}
	}
	return false
}

func containerPort(c *corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

func derefInt(p *int64, def int64) int64 {
	if p == nil {
		return def
	}
	return *p
}

// TestManifests: deploy/kubernetes/sidecar.yaml and gateway.yaml.
func TestManifests(t *testing.T) {
	for _, tc := range []struct {
		file string
		sh   shape
	}{
		{"kubernetes/sidecar.yaml", shape{}},
		{"kubernetes/gateway.yaml", shape{gateway: true}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			check(t, tc.file, decodeAll(t, tc.file, data), tc.sh)
		})
	}
}
