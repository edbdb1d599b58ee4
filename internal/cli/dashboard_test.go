package cli

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// exported is every metric the binary serves on /metrics, with its labels
// (histograms also as their _bucket, _sum and _count series).
func exported(t *testing.T) map[string][]string {
	t.Helper()
	reg, _ := newRegistry()
	descs := make(chan *prometheus.Desc, 1024)
	go func() {
		reg.Describe(descs)
		close(descs)
	}()
	desc := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}\}$`)
	out := map[string][]string{}
	for d := range descs {
		m := desc.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		out[m[1]] = labels
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			out[m[1]+suffix] = append(slices.Clone(labels), "le")
		}
	}
	return out
}

// TestGrafanaDashboard: deploy/grafana/kafka-proxy.json is a dashboard
// whose every query names only metrics the binary exports, grouped and
// filtered by labels those metrics have, through the dashboard's data
// source variable.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/kafka-proxy.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int      `json:"id"`
			Type    string   `json:"type"`
			Title   string   `json:"title"`
			Targets []target `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels")
	}
	metrics := exported(t)
	name := regexp.MustCompile(`\b((?:proxy|process|go)_[a-z0-9_]+)\b`)
	grouping := regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcher := regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)\s*"`)
	ids := map[int]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d: no title or no query", p.ID)
		}
		for _, tg := range p.Targets {
			queries++
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: data source %q, want the ${datasource} variable", p.Title, tg.Datasource.UID)
			}
			names := name.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no kafka-proxy metric", p.Title, tg.Expr)
			}
			var labels []string // the labels of the query's metrics
			for _, n := range names {
				l, ok := metrics[n]
				if !ok {
					t.Errorf("panel %q: %s is not exported by the binary", p.Title, n)
				}
				labels = append(labels, l...)
			}
			var used []string
			for _, g := range grouping.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(g[1], ",") {
					used = append(used, strings.TrimSpace(l))
				}
			}
			for _, m := range matcher.FindAllStringSubmatch(tg.Expr, -1) {
				used = append(used, m[1])
			}
			for _, l := range used {
				if l != "instance" && l != "job" && !slices.Contains(labels, l) {
					t.Errorf("panel %q: label %s is not one of %v", p.Title, l, names)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("%d queries: the dashboard covers throughput, latency, connections, auth and errors", queries)
	}
}
