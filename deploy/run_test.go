package deploy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/proctest"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/tasks"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// dockerBin returns cmd/faceidq built with the Dockerfile's own `go build` flags
// (once per test binary, by internal/proctest).
func dockerBin(t *testing.T) string {
	t.Helper()
	flags, pkg := dockerBuildArgs(t)
	if pkg != "./cmd/faceidq" {
		t.Fatalf("deploy/Dockerfile builds %s, want ./cmd/faceidq", pkg)
	}
	return proctest.Bin(t, flags...)
}

// binary is dockerBin for the tests that run processes; they skip in -short.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the binary's processes")
	}
	return dockerBin(t)
}

// start runs bin with args and exactly env (plus PATH and HOME), stopped with SIGTERM
// when the test ends.
func start(t *testing.T, name, bin string, args []string, env map[string]string) *proctest.Proc {
	t.Helper()
	p := proctest.MustStart(t, name, bin, args, env)
	t.Cleanup(func() { stop(t, p, 30*time.Second) })
	return p
}

// stop sends SIGTERM and waits up to grace; it reports a process that needed SIGKILL
// or exited with an error.
func stop(t *testing.T, p *proctest.Proc, grace time.Duration) {
	t.Helper()
	if p.Exited() {
		return
	}
	code, err := p.Term(grace)
	switch {
	case err != nil:
		t.Error(err)
	case code != 0:
		t.Errorf("%s exited %d after SIGTERM", p.Name, code)
	}
}

// get requests url without credentials, as a kubelet probe or Prometheus would.
func get(url string, header ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Timeout: 35 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
}

func testWebhookSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
}

// TestKubernetesProbesAgainstBinary runs the api and worker Deployments' containers
// as processes of the real binary, with the environment their manifests give them
// (ConfigMap, env, and the Secret's keys with test values; the listen addresses moved
// to free loopback ports, the upstream to an in-process simulator), and checks that
// every probe and the Prometheus scrape succeed without credentials, as the kubelet
// and the scrape configuration send none, and that SIGTERM stops each within the pod's
// grace period.
func TestKubernetesProbesAgainstBinary(t *testing.T) {
	bin := binary(t)
	red := redistest.Start(t, redistest.Options{})
	sim, err := simulator.New(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	secretValues := map[string]string{
		"REDIS_URL":               red.URL(),
		"TENCENTCLOUD_SECRET_ID":  simulator.DevSecretID,
		"TENCENTCLOUD_SECRET_KEY": simulator.DevSecretKey,
		"FACEIDQ_API_TOKENS":      "deploy-test-token",
		"FACEIDQ_WEBHOOK_SECRET":  testWebhookSecret(),
	}
	scrapeAuth := kubernetesScrapeAuth(t)
	_, objs := loadK8s(t)
	var cm k8sObject
	var deps []k8sObject
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			cm = o
		case "Deployment":
			deps = append(deps, o)
		}
	}
	for _, d := range deps {
		c := d.Spec.Template.Spec.Containers[0]
		t.Run(d.Metadata.Name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range cm.Data {
				env[k] = v
			}
			env["FACEIDQ_ENDPOINT"] = hs.URL
			var listenVar string
			for _, e := range c.Env {
				switch {
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					v, ok := secretValues[e.ValueFrom.SecretKeyRef.Key]
					if !ok {
						t.Fatalf("no test value for Secret key %s", e.ValueFrom.SecretKeyRef.Key)
					}
					env[e.Name] = v
				case e.Name == "FACEIDQ_LISTEN" || e.Name == "FACEIDQ_METRICS_LISTEN":
					listenVar = e.Name
				default:
					env[e.Name] = e.Value
				}
			}
			addr := freeAddr(t)
			env[listenVar] = addr
			p := start(t, d.Metadata.Name, bin, c.Args, env)
			base := "http://" + addr
			p.MustWaitHTTP(t, base+c.StartupProbe.HTTPGet.Path)
			for name, pr := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				code, body, err := get(base + pr.HTTPGet.Path)
				if err != nil || code < 200 || code >= 400 {
					t.Errorf("%s probe GET %s: %d %v %s (the kubelet sends no Authorization header)", name, pr.HTTPGet.Path, code, err, body)
				}
			}
			if code, _, err := get(base + "/readyz"); err == nil && code == 200 && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("/readyz answers without credentials now: make it the readiness probe (it checks Redis)")
			}
			path := d.Spec.Template.Metadata.Annotations["prometheus.io/path"]
			var auth []string
			if scrapeAuth[d.Spec.Template.Metadata.Labels["app.kubernetes.io/component"]] {
				auth = []string{"Authorization", "Bearer " + secretValues["FACEIDQ_API_TOKENS"]}
			}
			code, body, err := get(base+path, auth...)
			if err != nil || code != 200 {
				t.Errorf("Prometheus scrape GET %s (credentials: %v): %d %v %.200s", path, auth != nil, code, err, body)
			} else if !strings.Contains(body, "faceidq_pipeline_paused") {
				t.Errorf("GET %s lacks faceidq_pipeline_paused", path)
			}
			stop(t, p, time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second)
		})
	}
}

// TestComposeTopologyAgainstBinary runs docker-compose.yml's faceidq services as
// processes (no Docker engine here): the simulator, the api and two workers with the
// environment the file gives them (defaults, as with no env file), the service names
// redis and simulator resolved to loopback, and drains one job end to end.
func TestComposeTopologyAgainstBinary(t *testing.T) {
	bin := binary(t)
	var cf composeFile
	decodeYAML(t, "docker-compose.yml", &cf)
	red := redistest.Start(t, redistest.Options{})
	simAddr := freeAddr(t)
	envOf := func(name string, listen string) map[string]string {
		env := map[string]string{}
		for k, v := range cf.Services[name].Environment {
			v = resolve(t, name+" "+k, v)
			v = strings.ReplaceAll(v, "redis://redis:6379", "redis://"+red.Addr())
			v = strings.ReplaceAll(v, "http://simulator:9000", "http://"+simAddr)
			env[k] = v
		}
		for _, k := range []string{"FACEIDQ_LISTEN", "FACEIDQ_METRICS_LISTEN"} {
			if _, ok := env[k]; ok {
				env[k] = listen
			}
		}
		return env
	}
	sim := start(t, "simulator", bin, cf.Services["simulator"].Command, envOf("simulator", simAddr))
	// The simulator answers any path; its stats prove it is up.
	sim.MustWaitHTTP(t, "http://"+simAddr+"/_sim/stats")
	apiAddr := freeAddr(t)
	api := start(t, "api", bin, cf.Services["api"].Command, envOf("api", apiAddr))
	api.MustWaitHTTP(t, "http://"+apiAddr+"/readyz")
	var workers []string
	for i := 0; i < cf.Services["worker"].Deploy.Replicas; i++ {
		a := freeAddr(t)
		w := start(t, fmt.Sprintf("worker-%d", i+1), bin, cf.Services["worker"].Command, envOf("worker", a))
		w.MustWaitHTTP(t, "http://"+a+"/readyz")
		workers = append(workers, a)
	}

	req, err := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/tokens", strings.NewReader(`{"RedirectURL":"https://example.com/done","Extra":"compose"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "wait=20")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var job tasks.Job
	if err := json.NewDecoder(resp.Body).Decode(&job); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || job.Status != tasks.StatusSucceeded || job.BizToken == "" || job.Extra != "compose" {
		t.Fatalf("POST /v1/tokens with Prefer: wait=20 = %d %+v", resp.StatusCode, job)
	}
	_, body, err := get("http://" + simAddr + "/_sim/stats")
	var stats simulator.Stats
	if err == nil {
		err = json.Unmarshal([]byte(body), &stats)
	}
	if err != nil || stats.ByCode["OK"] != 1 {
		t.Errorf("simulator stats %+v, %v: want one OK", stats, err)
	}
	for _, a := range append([]string{apiAddr}, workers...) {
		if code, _, err := get("http://" + a + "/metrics"); err != nil || code != 200 {
			t.Errorf("Prometheus scrape of %s: %d %v", a, code, err)
		}
	}
}

// kubernetesScrapeAuth reads deploy/prometheus/kubernetes.yml: for each component
// (api, worker) its job keeps, whether the job sends a bearer token.
func kubernetesScrapeAuth(t *testing.T) map[string]bool {
	t.Helper()
	var pc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization *struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			RelabelConfigs []struct {
				SourceLabels []string `yaml:"source_labels"`
				Regex        string   `yaml:"regex"`
				Action       string   `yaml:"action"`
			} `yaml:"relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAML(t, "deploy/prometheus/kubernetes.yml", &pc)
	out := map[string]bool{}
	for _, sc := range pc.ScrapeConfigs {
		comp := ""
		for _, r := range sc.RelabelConfigs {
			if r.Action == "keep" && len(r.SourceLabels) == 1 && r.SourceLabels[0] == "__meta_kubernetes_pod_label_app_kubernetes_io_component" {
				comp = r.Regex
			}
		}
		if comp == "" || sc.JobName != "faceidq-"+comp {
			t.Errorf("kubernetes.yml job %s keeps component %q; want job faceidq-<component>", sc.JobName, comp)
			continue
		}
		out[comp] = sc.Authorization != nil && sc.Authorization.Type == "Bearer" && sc.Authorization.CredentialsFile != ""
	}
	for _, c := range []string{"api", "worker"} {
		if _, ok := out[c]; !ok {
			t.Errorf("kubernetes.yml scrapes no %s pods", c)
		}
	}
	return out
}
