package deploy_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/faceidq/faceidq/internal/simulator"
)

// composeFile is the part of a Compose file the test reads.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Profiles    []string          `yaml:"profiles"`
	DependsOn   any               `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Deploy *struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	ReadOnly bool `yaml:"read_only"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// interpolation is Compose's ${VAR}, ${VAR:-default} and ${VAR-default}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}`)

// resolve applies the defaults of Compose interpolations (as with no env file).
func resolve(t *testing.T, where, v string) string {
	t.Helper()
	out := interpolation.ReplaceAllString(v, "$3")
	if strings.Contains(out, "$") {
		t.Errorf("%s: unsupported interpolation in %q", where, v)
	}
	return out
}

// port returns the port of a listen address such as ":8080" or "0.0.0.0:8080".
func port(t *testing.T, where, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil || p == "" {
		t.Errorf("%s: listen address %q has no port", where, addr)
	}
	return p
}

// containerPort returns the container side of a Compose port mapping.
func containerPort(mapping string) string {
	i := strings.LastIndexByte(mapping, ':')
	return strings.TrimSuffix(mapping[i+1:], "/tcp")
}

func TestCompose(t *testing.T) {
	var cf composeFile
	decodeYAML(t, "docker-compose.yml", &cf)
	env := programEnv(t)
	svc := func(name string) composeService {
		t.Helper()
		s, ok := cf.Services[name]
		if !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
		return s
	}

	t.Run("redis persistence", func(t *testing.T) {
		r := svc("redis")
		if !strings.HasPrefix(r.Image, "redis:") {
			t.Errorf("redis image = %q", r.Image)
		}
		cmd := strings.Join(r.Command, " ")
		for _, want := range []string{"--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("redis command %q lacks %q", cmd, want)
			}
		}
		if r.Healthcheck == nil || !slices.Contains(r.Healthcheck.Test, "redis-cli") {
			t.Errorf("redis healthcheck = %+v, want redis-cli ping", r.Healthcheck)
		}
		if !slices.ContainsFunc(r.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
			t.Errorf("redis keeps no volume at /data: %v", r.Volumes)
		}
	})

	faceidq := map[string]string{"api": "api", "worker": "worker", "simulator": "simulate"}
	t.Run("faceidq services", func(t *testing.T) {
		for name, sub := range faceidq {
			s := svc(name)
			if s.Build == nil || s.Build.Context != "." || s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("%s: build = %+v, want context . and deploy/Dockerfile", name, s.Build)
			}
			if _, err := os.Stat(filepath.Join(root, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if len(s.Command) == 0 || s.Command[0] != sub {
				t.Errorf("%s: command = %v, want faceidq %s", name, s.Command, sub)
			}
			if !hasCommand(t, sub) {
				t.Errorf("%s: cmd/faceidq has no %q command", name, sub)
			}
			if len(s.Profiles) != 0 {
				t.Errorf("%s is in profiles %v; it must start by default", name, s.Profiles)
			}
			if !s.ReadOnly {
				t.Errorf("%s: read_only is off", name)
			}
			for k, v := range s.Environment {
				if !env[k] {
					t.Errorf("%s: environment %s is not a variable faceidq reads", name, k)
				}
				resolve(t, name+" "+k, v)
			}
		}
		if s := svc("worker"); s.Deploy == nil || s.Deploy.Replicas != 2 {
			t.Errorf("worker replicas = %+v, want 2", s.Deploy)
		}
		if len(svc("worker").Ports) != 0 {
			t.Error("worker publishes ports: two replicas would collide")
		}
	})

	t.Run("wiring", func(t *testing.T) {
		api, wrk, sim := svc("api"), svc("worker"), svc("simulator")
		for name, s := range map[string]composeService{"api": api, "worker": wrk} {
			if got := s.Environment["REDIS_URL"]; got != "redis://redis:6379/0" {
				t.Errorf("%s: REDIS_URL = %q, want the redis service", name, got)
			}
			if !dependsOn(s.DependsOn, "redis") {
				t.Errorf("%s does not depend on redis", name)
			}
		}
		apiPort := port(t, "api FACEIDQ_LISTEN", api.Environment["FACEIDQ_LISTEN"])
		if !slices.ContainsFunc(api.Ports, func(p string) bool { return containerPort(p) == apiPort }) {
			t.Errorf("api listens on %s but publishes %v", apiPort, api.Ports)
		}
		if _, ok := wrk.Environment["FACEIDQ_API_TOKENS"]; ok {
			t.Error("worker: FACEIDQ_API_TOKENS would put /metrics behind a token Prometheus does not send")
		}
		if wrk.Environment["FACEIDQ_METRICS_LISTEN"] == "" {
			t.Error("worker: FACEIDQ_METRICS_LISTEN unset: no /healthz, /readyz or /metrics")
		}
		// The default upstream is the simulator service, signed with the credentials
		// it accepts by default.
		endpoint := resolve(t, "FACEIDQ_ENDPOINT", wrk.Environment["FACEIDQ_ENDPOINT"])
		simPort := port(t, "simulator FACEIDQ_LISTEN", sim.Environment["FACEIDQ_LISTEN"])
		if endpoint != "http://simulator:"+simPort {
			t.Errorf("worker FACEIDQ_ENDPOINT defaults to %q, want http://simulator:%s", endpoint, simPort)
		}
		if id := resolve(t, "id", wrk.Environment["TENCENTCLOUD_SECRET_ID"]); id != simulator.DevSecretID {
			t.Errorf("worker TENCENTCLOUD_SECRET_ID defaults to %q, want the simulator's %q", id, simulator.DevSecretID)
		}
		if key := resolve(t, "key", wrk.Environment["TENCENTCLOUD_SECRET_KEY"]); key != simulator.DevSecretKey {
			t.Error("worker TENCENTCLOUD_SECRET_KEY does not default to the simulator's development key")
		}
		// Real secrets come from the environment or an env file, never from this file.
		for name, s := range cf.Services {
			for _, k := range secretEnv {
				v, ok := s.Environment[k]
				if !ok {
					continue
				}
				if !interpolation.MatchString(v) || !strings.HasPrefix(v, "${"+k) {
					t.Errorf("%s: %s is not taken from ${%s…}", name, k, k)
				}
			}
		}
	})

	t.Run("asynqmon", func(t *testing.T) {
		a := svc("asynqmon")
		if !strings.HasPrefix(a.Image, "hibiken/asynqmon") {
			t.Errorf("asynqmon image = %q", a.Image)
		}
		cmd := strings.Join(a.Command, " ")
		if !strings.Contains(cmd, "--redis-addr=redis:6379") || !strings.Contains(cmd, "--read-only") {
			t.Errorf("asynqmon command = %q, want --redis-addr=redis:6379 and --read-only", cmd)
		}
	})

	t.Run("monitoring profile", func(t *testing.T) {
		for _, name := range []string{"prometheus", "grafana"} {
			s := svc(name)
			if !slices.Equal(s.Profiles, []string{"monitoring"}) {
				t.Errorf("%s profiles = %v, want [monitoring]", name, s.Profiles)
			}
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if !strings.HasPrefix(src, "./") {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			}
		}
		if !slices.Contains(svc("prometheus").Volumes, "./deploy/prometheus:/etc/prometheus:ro") {
			t.Errorf("prometheus volumes = %v", svc("prometheus").Volumes)
		}
	})

	t.Run("named volumes declared", func(t *testing.T) {
		for name, s := range cf.Services {
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
					continue
				}
				if _, ok := cf.Volumes[src]; !ok {
					t.Errorf("%s uses volume %s, not declared", name, src)
				}
			}
		}
	})

	t.Run("prometheus scrapes the services", func(t *testing.T) {
		var pc struct {
			RuleFiles     []string `yaml:"rule_files"`
			ScrapeConfigs []struct {
				JobName       string `yaml:"job_name"`
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
				DNSSDConfigs []struct {
					Names []string `yaml:"names"`
					Type  string   `yaml:"type"`
					Port  int      `yaml:"port"`
				} `yaml:"dns_sd_configs"`
			} `yaml:"scrape_configs"`
		}
		decodeYAML(t, "deploy/prometheus/prometheus.yml", &pc)
		apiPort := port(t, "api", svc("api").Environment["FACEIDQ_LISTEN"])
		wrkPort := port(t, "worker", svc("worker").Environment["FACEIDQ_METRICS_LISTEN"])
		var targets []string
		for _, sc := range pc.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				targets = append(targets, st.Targets...)
			}
			for _, d := range sc.DNSSDConfigs {
				for _, n := range d.Names {
					targets = append(targets, n+":"+strconv.Itoa(d.Port))
				}
			}
		}
		for _, want := range []string{"api:" + apiPort, "worker:" + wrkPort} {
			if !slices.Contains(targets, want) {
				t.Errorf("prometheus.yml does not scrape %s (targets %v)", want, targets)
			}
		}
		for _, rf := range pc.RuleFiles {
			rel, ok := strings.CutPrefix(rf, "/etc/prometheus/")
			if !ok {
				t.Errorf("rule file %s is outside the mounted /etc/prometheus", rf)
				continue
			}
			if _, err := os.Stat(filepath.Join(root, "deploy", "prometheus", rel)); err != nil {
				t.Errorf("rule file %s: %v", rf, err)
			}
		}
	})
}

func dependsOn(v any, name string) bool {
	switch d := v.(type) {
	case []any:
		return slices.Contains(d, any(name))
	case map[string]any:
		_, ok := d[name]
		return ok
	}
	return false
}
