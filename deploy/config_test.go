package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/proctest"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/tasks"
)

// root is the repository root, relative to this package's directory.
const root = ".."

// specEnv are the environment variables of the product spec's "Configuration" table:
// the program reads each of them.
var specEnv = []string{
	"REDIS_URL", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "FACEIDQ_ENDPOINT", "FACEIDQ_REGION",
	"FACEIDQ_RATE", "FACEIDQ_LISTEN", "FACEIDQ_METRICS_LISTEN", "FACEIDQ_API_TOKENS", "FACEIDQ_WEBHOOK_SECRET",
	"FACEIDQ_RESULT_TTL", "FACEIDQ_WEBHOOK_ALLOW",
}

// secretEnv are the variables that hold secrets: never in a ConfigMap or an image.
var secretEnv = []string{"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "FACEIDQ_API_TOKENS", "FACEIDQ_WEBHOOK_SECRET"}

// listing is what the built binary says it reads and runs (`faceidq help --list`).
func listing(t *testing.T) *proctest.Listing {
	t.Helper()
	l, err := proctest.List(dockerBin(t))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// programEnv returns the environment variables the program reads, as the binary
// lists them; each of the product spec's table must be among them.
func programEnv(t *testing.T) map[string]bool {
	t.Helper()
	env := map[string]bool{}
	for k := range listing(t).Env {
		env[k] = true
	}
	for _, e := range specEnv {
		if !env[e] {
			t.Errorf("faceidq help --list does not name %s (product spec, Configuration)", e)
		}
	}
	return env
}

// hasCommand reports whether the binary lists command name.
func hasCommand(t *testing.T, name string) bool {
	t.Helper()
	return listing(t).Commands[name]
}

// readYAML decodes every document of a YAML file into a generic value.
func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// decodeYAML decodes a one-document YAML file into v (fields v does not name are
// ignored).
func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// metricKind is the kind of a metric family faceidq exports.
type metricKind int

const (
	counter metricKind = iota
	gauge
	histogram
)

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// definedMetrics returns every metric family internal/metrics defines (the fields of
// metrics.Metrics and the QueueCollector), with its kind.
func definedMetrics(t *testing.T) map[string]metricKind {
	t.Helper()
	out := map[string]metricKind{}
	describe := func(c prometheus.Collector, k metricKind) {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqNameRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			out[m[1]] = k
		}
	}
	m := metrics.New()
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() { // caches of looked-up series
			continue
		}
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		var k metricKind
		switch c.(type) { // Gauge before Counter: a Gauge has a Counter's methods too
		case *prometheus.HistogramVec, prometheus.Histogram:
			k = histogram
		case *prometheus.GaugeVec, prometheus.Gauge:
			k = gauge
		case *prometheus.CounterVec, prometheus.Counter:
			k = counter
		default:
			t.Fatalf("metrics.Metrics.%s: unknown collector type %T", v.Type().Field(i).Name, c)
		}
		describe(c, k)
	}
	describe(metrics.NewQueueCollector(noQueues{}), gauge)
	if len(out) < 10 {
		t.Fatalf("found only %d metrics in internal/metrics: %v", len(out), out)
	}
	return out
}

type noQueues struct{}

func (noQueues) Queues() ([]string, error)                     { return nil, nil }
func (noQueues) GetQueueInfo(string) (*asynq.QueueInfo, error) { return nil, errors.New("none") }

// labelValues are the values the code emits for the labels PromQL here may match on.
func labelValues() map[string][]string {
	var statuses []string
	for _, s := range []tasks.Status{tasks.StatusQueued, tasks.StatusRunning, tasks.StatusRetrying,
		tasks.StatusSucceeded, tasks.StatusFailed, tasks.StatusCanceled} {
		statuses = append(statuses, string(s))
	}
	return map[string][]string{
		"lane":    {ratelimit.Interactive.String(), ratelimit.Batch.String()},
		"status":  statuses,
		"outcome": {webhook.OutcomeSuccess, webhook.OutcomeFailure, webhook.OutcomeGone, webhook.OutcomeExhausted, webhook.OutcomeRefused},
		"queue":   append(slices.Clone(tasks.TokenQueues), tasks.QueueWebhooks),
		"state":   metrics.QueueStates,
		// worker: className; "ok" for success.
		"class": {"ok", "retryable", "rate_limited", "permanent", "account"},
		// worker: the upstream actions (action.name).
		"action": {faceid.Action},
		"job":    {"faceidq-api", "faceidq-worker"},
	}
}

var (
	metricRE  = regexp.MustCompile(`\bfaceidq_[a-z0-9_]+\b`)
	selectRE  = regexp.MustCompile(`\{([^{}]*)\}`)
	matcherRE = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
)

// checkPromQL checks that every faceidq metric expr uses is defined (a histogram's
// _bucket, _sum and _count series included), and that every label value it matches on
// is one the code emits. It returns the metric families used.
func checkPromQL(t *testing.T, where, expr string, defined map[string]metricKind) []string {
	t.Helper()
	var used []string
	for _, name := range metricRE.FindAllString(expr, -1) {
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok {
				if k, found := defined[b]; found && k == histogram {
					base = b
				}
			}
		}
		k, ok := defined[base]
		switch {
		case !ok:
			t.Errorf("%s: metric %s is not defined in internal/metrics (expr %q)", where, name, expr)
		case k == histogram && base == name:
			t.Errorf("%s: histogram %s used without _bucket/_sum/_count (expr %q)", where, name, expr)
		case k == counter && !strings.Contains(expr, "rate("+name) && !strings.Contains(expr, "increase("+name):
			t.Errorf("%s: counter %s used outside rate()/increase() (expr %q)", where, name, expr)
		}
		used = append(used, base)
	}
	values := labelValues()
	for _, sel := range selectRE.FindAllStringSubmatch(expr, -1) {
		for _, m := range matcherRE.FindAllStringSubmatch(sel[1], -1) {
			label, op, val := m[1], m[2], m[3]
			allowed, known := values[label]
			if !known {
				continue
			}
			alts := []string{val}
			if op == "=~" || op == "!~" {
				if strings.ContainsAny(val, `.*+?()[]\`) {
					continue // a real regular expression: not checked
				}
				alts = strings.Split(val, "|")
			}
			for _, a := range alts {
				if !slices.Contains(allowed, a) {
					t.Errorf("%s: label %s=%q is never emitted (values: %v; expr %q)", where, label, a, allowed, expr)
				}
			}
		}
	}
	return used
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
