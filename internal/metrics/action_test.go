package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceidq/faceidq/internal/metrics"
)

// series returns the series of family name as "label=value,… value" lines.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			var v float64
			switch {
			case mt.GetCounter() != nil:
				v = mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				v = mt.GetGauge().GetValue()
			case mt.GetHistogram() != nil:
				v = float64(mt.GetHistogram().GetSampleCount())
			}
			got[strings.Join(ls, ",")] = v
		}
	}
	return got
}

func TestActionKeepsActionsApart(t *testing.T) {
	m := metrics.New()
	apply, get := m.Action("Apply"), m.Action("Get")
	apply.ObserveUpstream("OK", "ok", time.Millisecond)
	apply.ObserveUpstream("OK", "ok", time.Millisecond)
	get.ObserveUpstream("InternalError", "retryable", time.Millisecond)
	apply.ObserveLimiterWait("interactive", time.Millisecond)
	get.ObserveLimiterWait("batch", time.Millisecond)
	get.ObservePenalty()
	apply.SetLimiterInterval(50 * time.Millisecond)
	get.SetLimiterInterval(100 * time.Millisecond)

	for _, tc := range []struct {
		name string
		want map[string]float64
	}{
		{"faceidq_upstream_calls_total", map[string]float64{"action=Apply,code=OK": 2, "action=Get,code=InternalError": 1}},
		{"faceidq_upstream_call_duration_seconds", map[string]float64{"action=Apply,class=ok": 2, "action=Get,class=retryable": 1}},
		{"faceidq_limiter_wait_seconds", map[string]float64{"action=Apply,lane=interactive": 1, "action=Get,lane=batch": 1}},
		{"faceidq_limiter_penalties_total", map[string]float64{"action=Apply": 0, "action=Get": 1}},
		{"faceidq_limiter_interval_seconds", map[string]float64{"action=Apply": 0.05, "action=Get": 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := series(t, m.Registry, tc.name)
			if len(got) != len(tc.want) {
				t.Fatalf("series %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestActionNil(t *testing.T) {
	var m *metrics.Metrics
	a := m.Action("Apply")
	if a != nil {
		t.Fatalf("Action of a nil *Metrics = %v, want nil", a)
	}
	a.ObserveUpstream("OK", "ok", time.Millisecond)
	a.ObserveLimiterWait("interactive", time.Millisecond)
	a.ObservePenalty()
	a.SetLimiterInterval(time.Millisecond)
}

// Recording through an Action costs no allocation once its series exist: the action
// label is resolved once, not per call.
func TestActionAllocs(t *testing.T) {
	a := metrics.New().Action("Apply")
	a.ObserveUpstream("OK", "ok", time.Millisecond)
	a.ObserveLimiterWait("interactive", time.Millisecond)
	n := testing.AllocsPerRun(100, func() {
		a.ObserveUpstream("OK", "ok", time.Millisecond)
		a.ObserveLimiterWait("interactive", time.Millisecond)
		a.SetLimiterInterval(time.Millisecond)
	})
	if n != 0 {
		t.Errorf("%v allocations per recorded call, want 0", n)
	}
}
