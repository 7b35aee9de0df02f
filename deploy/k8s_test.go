package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sObject is the part of a Kubernetes object the test reads.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service
		ServiceSelector map[string]string `yaml:"-"`
		Ports           []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		// PodDisruptionBudget
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
	} `yaml:"spec"`
	raw map[string]any
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// loadK8s reads the resources kustomization.yaml lists.
func loadK8s(t *testing.T) (kust map[string]any, objs []k8sObject) {
	t.Helper()
	docs := readYAML(t, "deploy/k8s/kustomization.yaml")
	if len(docs) != 1 {
		t.Fatalf("kustomization.yaml: %d documents", len(docs))
	}
	kust = docs[0]
	res, _ := kust["resources"].([]any)
	if len(res) == 0 {
		t.Fatal("kustomization.yaml lists no resources")
	}
	for _, r := range res {
		objs = append(objs, decodeObjects(t, filepath.Join("deploy", "k8s", r.(string)))...)
	}
	return kust, objs
}

func decodeObjects(t *testing.T, path string) []k8sObject {
	t.Helper()
	var out []k8sObject
	for _, raw := range readYAML(t, path) {
		b, err := yaml.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		var o k8sObject
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		o.raw = raw
		if o.Kind == "Service" {
			if spec, ok := raw["spec"].(map[string]any); ok {
				if sel, ok := spec["selector"].(map[string]any); ok {
					o.Spec.ServiceSelector = map[string]string{}
					for k, v := range sel {
						o.Spec.ServiceSelector[k], _ = v.(string)
					}
				}
			}
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: object without apiVersion, kind or name: %v", path, raw)
		}
		out = append(out, o)
	}
	return out
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetes(t *testing.T) {
	kust, objs := loadK8s(t)
	env := programEnv(t)
	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	one := func(kind string) k8sObject {
		t.Helper()
		if len(byKind[kind]) != 1 {
			t.Fatalf("want one %s, have %d", kind, len(byKind[kind]))
		}
		return byKind[kind][0]
	}
	secret, cm := one("Secret"), one("ConfigMap")
	deployments := map[string]k8sObject{}
	for _, d := range byKind["Deployment"] {
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", d.Metadata.Name, len(d.Spec.Template.Spec.Containers))
		}
		deployments[d.Spec.Template.Spec.Containers[0].Args[0]] = d
	}

	t.Run("secret and configmap", func(t *testing.T) {
		for _, k := range append(slices.Clone(secretEnv), "REDIS_URL") {
			if _, ok := secret.StringData[k]; !ok {
				t.Errorf("Secret lacks %s", k)
			}
		}
		for k := range secret.StringData {
			if !env[k] {
				t.Errorf("Secret key %s is not a variable faceidq reads", k)
			}
		}
		for k := range cm.Data {
			if !env[k] {
				t.Errorf("ConfigMap key %s is not a variable faceidq reads", k)
			}
			if slices.Contains(secretEnv, k) || k == "REDIS_URL" {
				t.Errorf("ConfigMap holds %s, which belongs in the Secret", k)
			}
		}
	})

	listen := map[string]string{"api": "FACEIDQ_LISTEN", "worker": "FACEIDQ_METRICS_LISTEN"}
	// The API's /readyz requires the bearer token when tokens are set, which a kubelet
	// cannot send: its readiness probe is /healthz (TestKubernetesProbesAgainstBinary
	// fails once /readyz answers without credentials, to switch it back).
	readinessPath := map[string]string{"api": "/healthz", "worker": "/readyz"}
	for role, listenVar := range listen {
		t.Run(role+" deployment", func(t *testing.T) {
			d, ok := deployments[role]
			if !ok {
				t.Fatalf("no Deployment runs faceidq %s (have %v)", role, sortedKeys(deployments))
			}
			if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
				t.Errorf("selector %v does not select the pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				t.Errorf("replicas = %v, want at least 2 (with a PodDisruptionBudget of 1)", d.Spec.Replicas)
			}
			ps := d.Spec.Template.Spec
			if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser == 0 {
				t.Errorf("pod securityContext does not run as non-root: %+v", ps.SecurityContext)
			}
			c := ps.Containers[0]
			if c.Image != "faceidq" {
				t.Errorf("image %q is not the kustomization's image name faceidq", c.Image)
			}
			vars := map[string]string{}
			for _, e := range c.Env {
				if !env[e.Name] {
					t.Errorf("env %s is not a variable faceidq reads", e.Name)
				}
				vars[e.Name] = e.Value
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					if ref.Name != secret.Metadata.Name {
						t.Errorf("env %s refers to Secret %s, not %s", e.Name, ref.Name, secret.Metadata.Name)
					}
					if _, ok := secret.StringData[ref.Key]; !ok {
						t.Errorf("env %s refers to Secret key %s, which it lacks", e.Name, ref.Key)
					}
				}
				if slices.Contains(secretEnv, e.Name) && e.Value != "" {
					t.Errorf("env %s has a literal value", e.Name)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name != cm.Metadata.Name {
					t.Errorf("envFrom ConfigMap %s, not %s", ef.ConfigMapRef.Name, cm.Metadata.Name)
				}
				if ef.SecretRef != nil && ef.SecretRef.Name != secret.Metadata.Name {
					t.Errorf("envFrom Secret %s, not %s", ef.SecretRef.Name, secret.Metadata.Name)
				}
			}
			if _, ok := vars["REDIS_URL"]; !ok {
				t.Error("no REDIS_URL: faceidq " + role + " refuses to start without it")
			}
			if role == "worker" {
				for _, k := range []string{"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"} {
					if _, ok := vars[k]; !ok {
						t.Errorf("the worker lacks %s", k)
					}
				}
			}
			addr, ok := vars[listenVar]
			if !ok {
				t.Fatalf("%s is not set", listenVar)
			}
			lp := port(t, listenVar, addr)
			if host, _, _ := net.SplitHostPort(addr); host != "" && host != "0.0.0.0" && host != "::" {
				t.Errorf("%s = %q listens on %s only; probes and Prometheus come from outside the pod", listenVar, addr, host)
			}
			portName := ""
			for _, p := range c.Ports {
				if strconv.Itoa(p.ContainerPort) == lp {
					portName = p.Name
				}
			}
			if portName == "" {
				t.Fatalf("no containerPort %s (%s)", lp, listenVar)
			}
			for name, pr := range map[string]struct {
				p    *probe
				path string
			}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, readinessPath[role]}, "startup": {c.StartupProbe, "/healthz"}} {
				if pr.p == nil || pr.p.HTTPGet == nil {
					t.Errorf("%s probe missing", name)
					continue
				}
				if pr.p.HTTPGet.Path != pr.path {
					t.Errorf("%s probe path %s, want %s", name, pr.p.HTTPGet.Path, pr.path)
				}
				if got := toString(pr.p.HTTPGet.Port); got != portName && got != lp {
					t.Errorf("%s probe port %s, want %s (%s)", name, got, portName, lp)
				}
			}
			if a := d.Spec.Template.Metadata.Annotations; a["prometheus.io/port"] != lp || a["prometheus.io/path"] != "/metrics" {
				t.Errorf("prometheus annotations %v, want port %s and /metrics", a, lp)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
					t.Errorf("%s request/limit missing: %+v", r, c.Resources)
				}
			}
			if sc := c.SecurityContext; sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("container securityContext %+v", sc)
			}
			if !hasCommand(t, role) {
				t.Errorf("cmd/faceidq has no %q command", role)
			}
		})
	}

	t.Run("disruption budgets", func(t *testing.T) {
		covered := map[string]bool{}
		for _, pdb := range byKind["PodDisruptionBudget"] {
			if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
				t.Errorf("%s sets neither minAvailable nor maxUnavailable", pdb.Metadata.Name)
			}
			for role, d := range deployments {
				if subset(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
					covered[role] = true
				}
			}
		}
		for role := range listen {
			if !covered[role] {
				t.Errorf("no PodDisruptionBudget selects the %s pods", role)
			}
		}
	})

	t.Run("services", func(t *testing.T) {
		api := false
		for _, s := range byKind["Service"] {
			var target *k8sObject
			for _, d := range deployments {
				if subset(s.Spec.ServiceSelector, d.Spec.Template.Metadata.Labels) {
					target = &d
				}
			}
			if target == nil {
				t.Errorf("Service %s selects no Deployment's pods", s.Metadata.Name)
				continue
			}
			c := target.Spec.Template.Spec.Containers[0]
			for _, p := range s.Spec.Ports {
				tp := toString(p.TargetPort)
				if !slices.ContainsFunc(c.Ports, func(cp struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				}) bool {
					return cp.Name == tp || strconv.Itoa(cp.ContainerPort) == tp
				}) {
					t.Errorf("Service %s targets port %s, which the pod does not expose", s.Metadata.Name, tp)
				}
			}
			if c.Args[0] == "api" {
				api = true
			}
		}
		if !api {
			t.Error("no Service in front of the API")
		}
	})

	t.Run("kustomization", func(t *testing.T) {
		imgs, _ := kust["images"].([]any)
		found := false
		for _, i := range imgs {
			if m, ok := i.(map[string]any); ok && m["name"] == "faceidq" {
				found = true
			}
		}
		if !found {
			t.Error("kustomization.yaml does not map the image name faceidq")
		}
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl not installed: kustomize build not checked")
		}
		out, err := exec.Command(kubectl, "kustomize", filepath.Join(root, "deploy", "k8s")).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("kubectl kustomize: %v\n%s", err, ee.Stderr)
			}
			t.Fatalf("kubectl kustomize: %v", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(out))
		n := 0
		for {
			var o map[string]any
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			md, _ := o["metadata"].(map[string]any)
			if o["kind"] != "Namespace" && md["namespace"] != kust["namespace"] {
				t.Errorf("%v %v is not in namespace %v", o["kind"], md["name"], kust["namespace"])
			}
			n++
		}
		if n != len(objs) {
			t.Errorf("kustomize built %d objects, the files hold %d", n, len(objs))
		}
		if !bytes.Contains(out, []byte("image: ghcr.io/faceidq/faceidq:")) {
			t.Error("kustomize did not rewrite the image")
		}
	})
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	}
	return ""
}
