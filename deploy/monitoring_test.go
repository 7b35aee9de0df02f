package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// grafanaPanel is the part of a Grafana panel the test reads.
type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "faceidq.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string         `json:"uid"`
		Title      string         `json:"title"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("faceidq.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("dashboard without uid or title")
	}
	hasDS := false
	for _, v := range dash.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no ${datasource} variable of type prometheus: the panels' data source would not resolve")
	}

	defined := definedMetrics(t)
	used := map[string]bool{}
	ids := map[int]string{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q queries nothing", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q target %s has no expr", p.Title, tg.RefID)
					continue
				}
				if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
					t.Errorf("panel %q: unbalanced parentheses in %q", p.Title, tg.Expr)
				}
				for _, m := range checkPromQL(t, "panel "+p.Title, tg.Expr, defined) {
					used[m] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	t.Run("promtool", func(t *testing.T) {
		// Every panel query, checked by Prometheus's own parser as recording rules.
		var exprs []string
		var collect func(ps []grafanaPanel)
		collect = func(ps []grafanaPanel) {
			for _, p := range ps {
				for _, tg := range p.Targets {
					exprs = append(exprs, tg.Expr)
				}
				collect(p.Panels)
			}
		}
		collect(dash.Panels)
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		for i, e := range exprs {
			q, _ := json.Marshal(e) // a JSON string is a YAML double-quoted string
			fmt.Fprintf(&rules, "      - record: dashboard_query_%d\n        expr: %s\n", i, q)
		}
		promtoolCheck(t, "rules", "dashboard-rules.yml", rules.String())
	})
	// Every metric faceidq defines is on the dashboard, except the process and Go ones.
	for _, m := range sortedKeys(defined) {
		if !used[m] {
			t.Errorf("metric %s is on no panel", m)
		}
	}
}

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRules(t *testing.T) {
	var rf ruleFile
	decodeYAML(t, "deploy/prometheus/alerts.yml", &rf)
	defined := definedMetrics(t)
	exprs := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert name", g.Name)
				continue
			}
			if _, dup := exprs[r.Alert]; dup {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			exprs[r.Alert] = r.Expr
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("%s: unbalanced parentheses", r.Alert)
			}
			checkPromQL(t, "alert "+r.Alert, r.Expr, defined)
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary or description missing", r.Alert)
			}
		}
	}
	// The four alerts.
	for _, tc := range []struct{ name, want string }{
		{"paused pipeline", "faceidq_pipeline_paused) == 1"},
		{"upstream error rate", `faceidq_upstream_calls_total{code!="OK"}`},
		{"limiter saturation", "faceidq_limiter_interval_seconds"},
		{"webhook failures", `faceidq_webhook_deliveries_total{outcome=~"failure|exhausted|refused"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, e := range exprs {
				if strings.Contains(e, tc.want) {
					return
				}
			}
			t.Errorf("no alert's expr contains %s", tc.want)
		})
	}
	t.Run("promtool", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
		if err != nil {
			t.Fatal(err)
		}
		promtoolCheck(t, "rules", "alerts.yml", string(b))
	})
}

// TestPrometheusConfig checks the scrape configurations with promtool when it is
// installed, with the in-container paths of rule and credential files moved to a
// temporary directory.
func TestPrometheusConfig(t *testing.T) {
	for _, f := range []string{"prometheus.yml", "kubernetes.yml"} {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", f))
			if err != nil {
				t.Fatal(err)
			}
			alerts, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
			if err != nil {
				t.Fatal(err)
			}
			promtoolCheck(t, "config", f, string(b), "alerts.yml", string(alerts), "api-token", "token\n")
		})
	}
}

// promtoolCheck writes content (and extra name, content pairs) to a temporary
// directory, with /etc/prometheus/… paths pointing there, and runs
// `promtool check <what>` on it. It skips when promtool is not installed.
func promtoolCheck(t *testing.T, what, name, content string, extra ...string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	dir := t.TempDir()
	fix := func(s string) string {
		s = strings.ReplaceAll(s, "/etc/prometheus/secrets/faceidq/", dir+"/")
		return strings.ReplaceAll(s, "/etc/prometheus/", dir+"/")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if err := os.WriteFile(filepath.Join(dir, extra[i]), []byte(fix(extra[i+1])), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(fix(content)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", what, path).CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("kubernetes_sd_configs not found")) {
			// Debian's prometheus package is built without Kubernetes service discovery.
			t.Skipf("this promtool has no Kubernetes service discovery (e.g. Debian's build): %s", bytes.TrimSpace(out))
		}
		t.Errorf("promtool check %s %s: %v\n%s", what, name, err, out)
	}
}
