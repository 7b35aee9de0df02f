// Package metrics defines every Prometheus metric faceidq exports, in one place, with
// bounded label values only (never a JobId, a URL or a token).
//
// The upstream and limiter metrics carry an action label, the upstream action's name:
// each action has its own budget, so their calls and waits are never mixed. A
// component takes the *Action of its action once (Metrics.Action) and records
// through it.
//
// Components take a *Metrics; a nil *Metrics is valid and records nothing, so
// libraries and tests need no registry.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric name.
const Namespace = "faceidq"

// Metrics holds faceidq's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	UpstreamCalls        *prometheus.CounterVec   // action, code ("OK" for success)
	UpstreamDuration     *prometheus.HistogramVec // action, class
	LimiterWait          *prometheus.HistogramVec // action, lane
	JobsFinished         *prometheus.CounterVec   // status, lane
	JobDuration          *prometheus.HistogramVec // lane: created → final
	JobPickup            *prometheus.HistogramVec // lane: created → upstream call
	PipelinePaused       prometheus.Gauge
	WebhookDeliveries    *prometheus.CounterVec // outcome
	WebhookDuration      prometheus.Histogram
	HTTPRequests         *prometheus.CounterVec   // route, code
	HTTPDuration         *prometheus.HistogramVec // route
	JobsSubmitted        *prometheus.CounterVec   // lane
	UpstreamRetries      *prometheus.CounterVec   // class
	LimiterPenalties     *prometheus.CounterVec   // action
	LimiterIntervalGauge *prometheus.GaugeVec     // action

	// httpSeries and submitted hold the series of ObserveHTTP and ObserveSubmitted
	// once looked up: a request does not hash its labels again.
	httpSeries sync.Map // httpKey → httpSeries
	submitted  sync.Map // lane → prometheus.Counter
}

type httpKey struct {
	route string
	code  int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

var latencyBuckets = []float64{.005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New creates the collectors and registers them, with the Go and process
// collectors, on a new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		UpstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "upstream_calls_total",
			Help: "Upstream calls by action and answer code (OK for success)."}, []string{"action", "code"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "upstream_call_duration_seconds",
			Help: "Upstream call latency by action and error class (ok, retryable, rate_limited, permanent, account).", Buckets: latencyBuckets}, []string{"action", "class"}),
		LimiterWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "limiter_wait_seconds",
			Help: "Time a job waited for a global rate-limit slot of its action, by action and lane.", Buckets: latencyBuckets}, []string{"action", "lane"}),
		JobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "jobs_finished_total",
			Help: "Jobs that reached a final state, by state and lane."}, []string{"status", "lane"}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "job_duration_seconds",
			Help: "Job end-to-end latency (created to final), by lane.", Buckets: latencyBuckets}, []string{"lane"}),
		JobPickup: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "job_pickup_seconds",
			Help: "Time from a job's creation to its first upstream call, by lane.", Buckets: latencyBuckets}, []string{"lane"}),
		PipelinePaused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "pipeline_paused",
			Help: "1 while the pipeline switch is off (account-level upstream error or operator)."}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome."}, []string{"outcome"}),
		WebhookDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "webhook_delivery_duration_seconds",
			Help: "Webhook delivery attempt latency.", Buckets: latencyBuckets}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP API requests by route pattern and status code."}, []string{"route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
			Help: "HTTP API latency by route pattern.", Buckets: latencyBuckets}, []string{"route"}),
		JobsSubmitted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "jobs_submitted_total",
			Help: "Jobs accepted by this process, by lane."}, []string{"lane"}),
		UpstreamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "job_retries_total",
			Help: "Jobs sent back to their queue, by error class."}, []string{"class"}),
		LimiterPenalties: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "limiter_penalties_total",
			Help: "Times an action's global limiter slowed down after RequestLimitExceeded, by action."}, []string{"action"}),
		LimiterIntervalGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "limiter_interval_seconds",
			Help: "Spacing between an action's upstream calls this process paces with (1/rate plus the observed jitter margin), by action."}, []string{"action"}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.UpstreamCalls, m.UpstreamDuration, m.LimiterWait, m.JobsFinished, m.JobDuration, m.JobPickup,
		m.PipelinePaused, m.WebhookDeliveries, m.WebhookDuration, m.HTTPRequests, m.HTTPDuration,
		m.JobsSubmitted, m.UpstreamRetries, m.LimiterPenalties, m.LimiterIntervalGauge)
	return m
}

// ObserveFinished records a job reaching a final state after d since creation.
func (m *Metrics) ObserveFinished(status, lane string, d time.Duration) {
	if m == nil {
		return
	}
	m.JobsFinished.WithLabelValues(status, lane).Inc()
	if d > 0 {
		m.JobDuration.WithLabelValues(lane).Observe(d.Seconds())
	}
}

// ObservePickup records the time from a job's creation to its first upstream call.
func (m *Metrics) ObservePickup(lane string, d time.Duration) {
	if m == nil {
		return
	}
	m.JobPickup.WithLabelValues(lane).Observe(d.Seconds())
}

// ObserveRetry records a job sent back to its queue.
func (m *Metrics) ObserveRetry(class string) {
	if m == nil {
		return
	}
	m.UpstreamRetries.WithLabelValues(class).Inc()
}

// SetPaused sets the pipeline gauge.
func (m *Metrics) SetPaused(paused bool) {
	if m == nil {
		return
	}
	if paused {
		m.PipelinePaused.Set(1)
	} else {
		m.PipelinePaused.Set(0)
	}
}

// ObserveWebhook records one webhook delivery attempt.
func (m *Metrics) ObserveWebhook(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.WebhookDeliveries.WithLabelValues(outcome).Inc()
	if d > 0 {
		m.WebhookDuration.Observe(d.Seconds())
	}
}

// ObserveSubmitted records a job accepted by this process.
func (m *Metrics) ObserveSubmitted(lane string) {
	if m == nil {
		return
	}
	c, ok := m.submitted.Load(lane)
	if !ok {
		c, _ = m.submitted.LoadOrStore(lane, m.JobsSubmitted.WithLabelValues(lane))
	}
	c.(prometheus.Counter).Inc()
}

// ObserveHTTP records one HTTP request.
func (m *Metrics) ObserveHTTP(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	k := httpKey{route, code}
	v, ok := m.httpSeries.Load(k)
	if !ok {
		v, _ = m.httpSeries.LoadOrStore(k, httpSeries{
			requests: m.HTTPRequests.WithLabelValues(route, itoa(code)),
			duration: m.HTTPDuration.WithLabelValues(route),
		})
	}
	s := v.(httpSeries)
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

func itoa(n int) string {
	if n >= 100 && n < 600 {
		return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
	}
	return "other"
}

// Delivered records one webhook delivery attempt (webhook.Observer).
func (m *Metrics) Delivered(outcome string, d time.Duration) { m.ObserveWebhook(outcome, d) }
