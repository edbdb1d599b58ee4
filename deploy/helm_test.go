package deploy_test

import (
	"path"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"sigs.k8s.io/yaml"
)

// render renders the chart as `helm template` does, with values given as
// YAML over the chart's defaults, and returns the manifests by file.
func render(t *testing.T, values string) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load("helm/kafka-proxy")
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatalf("values: %v", err)
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "gw", Namespace: "kafka", IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// manifests decodes every rendered manifest strictly, in file order.
func manifests(t *testing.T, out map[string]string) []object {
	t.Helper()
	var files []string
	for f := range out {
		files = append(files, f)
	}
	slices.Sort(files)
	var objs []object
	for _, f := range files {
		if path.Ext(f) != ".yaml" {
			continue
		}
		objs = append(objs, decodeAll(t, f, []byte(out[f]))...)
	}
	return objs
}

// TestHelmChart renders deploy/helm/kafka-proxy in both shapes and with
// each optional part on, and checks every manifest as the plain ones.
func TestHelmChart(t *testing.T) {
	full := `
upstream:
  tls: {enabled: true, secretName: gw-user, certKey: tls.crt, keyKey: tls.key, keyPasswordKey: user.password}
  sasl: {enabled: true, method: SCRAM-SHA-512, jaasSecretName: gw-jaas}
listener:
  tls: {enabled: true, secretName: gw-listener}
  allowCIDRs: [10.0.0.0/8, "fd00::/8"]
  maxConnectionsPerIP: 100
auth:
  local: {enabled: true, mechanisms: [SCRAM-SHA-512, PLAIN], usersSecretName: gw-users}
acls: {configMapName: gw-acls, superUsers: ["User:ops", "User:admin"]}
audit: {log: stdout}
serviceMonitor: {enabled: true}
`
	sidecar := `
mode: sidecar
replicaCount: 1
dynamicListeners: {enabled: true, sequentialMinPort: 32403}
upstream:
  tls: {enabled: true, secretName: msk-ca}
  sasl: {enabled: true, method: SCRAM-SHA-512, jaasSecretName: orders-jaas}
sidecar:
  containers:
    - name: app
      image: registry.example.com/orders:1.0.0
      env: [{name: KAFKA_BOOTSTRAP_SERVERS, value: "127.0.0.1:32400"}]
`
	for _, tc := range []struct {
		name, values string
		sh           shape
		wantKinds    []string
		wantArgs     []string
	}{
		{"gateway defaults", "", shape{gateway: true}, []string{"Deployment", "PodDisruptionBudget", "Service"},
			[]string{"--bootstrap-server-mapping=my-cluster-kafka-0.my-cluster-kafka-brokers.kafka.svc:9093,0.0.0.0:32400,gw-kafka-proxy.kafka.svc:32400"}},
		{"gateway with every option", full, shape{gateway: true}, []string{"Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"},
			[]string{"--tls-client-key-password-file=/etc/kafka-proxy/upstream-tls/user.password", "--tls-client-key-file=/etc/kafka-proxy/upstream-tls/tls.key", "--sasl-jaas-config-file=/etc/kafka-proxy/upstream-sasl/jaas.conf",
				"--proxy-listener-allow-cidr=10.0.0.0/8,fd00::/8", "--auth-local-mechanism=SCRAM-SHA-512,PLAIN", "--acl-file=/etc/kafka-proxy/acls",
				"--acl-super-users=User:ops;User:admin", "--audit-log=stdout"}},
		{"sidecar", sidecar, shape{}, []string{"Deployment"},
			[]string{"--bootstrap-server-mapping=my-cluster-kafka-0.my-cluster-kafka-brokers.kafka.svc:9093,127.0.0.1:32400,127.0.0.1:32400", "--dynamic-sequential-min-port=32403"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, tc.values)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			objs := manifests(t, out)
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.kind)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, tc.wantKinds) {
				t.Fatalf("kinds %v, want %v", kinds, tc.wantKinds)
			}
			check(t, tc.name, objs, tc.sh)
			var args []string
			for _, o := range objs {
				if o.deployment != nil {
					for _, c := range o.deployment.Spec.Template.Spec.Containers {
						if c.Name == "kafka-proxy" {
							args = c.Args
						}
					}
				}
			}
			for _, want := range tc.wantArgs {
				if !slices.Contains(args, want) {
					t.Errorf("no %s in the proxy's args %q", want, args)
				}
			}
		})
	}

	// A part turned on without the Secret it needs fails the render,
	// naming the value to set.
	if _, err := render(t, "upstream: {tls: {enabled: true}}"); err == nil || !strings.Contains(err.Error(), "upstream.tls.secretName") {
		t.Errorf("TLS without its Secret: %v, want an error naming upstream.tls.secretName", err)
	}
}
