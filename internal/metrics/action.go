package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Action records the upstream and limiter metrics of one upstream action. Its
// collectors are curried with the action's name once, so that recording a call costs
// only the lookup of its other label. A nil *Action records nothing.
type Action struct {
	calls     *prometheus.CounterVec   // code
	duration  *prometheus.HistogramVec // class
	wait      *prometheus.HistogramVec // lane
	penalties prometheus.Counter
	interval  prometheus.Gauge
}

// Action returns the recorder of the upstream action name (faceid.Action…); nil when
// m is nil. Call it once per action, not per call.
func (m *Metrics) Action(name string) *Action {
	if m == nil {
		return nil
	}
	l := prometheus.Labels{"action": name}
	return &Action{
		calls:     m.UpstreamCalls.MustCurryWith(l),
		duration:  curried(m.UpstreamDuration, l),
		wait:      curried(m.LimiterWait, l),
		penalties: m.LimiterPenalties.With(l),
		interval:  m.LimiterIntervalGauge.With(l),
	}
}

// ObserveUpstream records one upstream call answered with code ("OK" for success)
// of error class class after d.
func (a *Action) ObserveUpstream(code, class string, d time.Duration) {
	if a == nil {
		return
	}
	a.calls.WithLabelValues(code).Inc()
	a.duration.WithLabelValues(class).Observe(d.Seconds())
}

// ObserveLimiterWait records the wait for one rate-limit slot in lane.
func (a *Action) ObserveLimiterWait(lane string, d time.Duration) {
	if a == nil {
		return
	}
	a.wait.WithLabelValues(lane).Observe(d.Seconds())
}

// ObservePenalty records a slow-down of the action's limiter.
func (a *Action) ObservePenalty() {
	if a == nil {
		return
	}
	a.penalties.Inc()
}

// SetLimiterInterval records the action's pacing interval.
func (a *Action) SetLimiterInterval(d time.Duration) {
	if a == nil {
		return
	}
	a.interval.Set(d.Seconds())
}

// curried is v with the labels l set. It keeps the concrete type: a variadic call
// through the ObserverVec interface would allocate its label values on every call.
func curried(v *prometheus.HistogramVec, l prometheus.Labels) *prometheus.HistogramVec {
	return v.MustCurryWith(l).(*prometheus.HistogramVec)
}
