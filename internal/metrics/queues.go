package metrics

import (
	"errors"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueStates are the values of the state label of faceidq_queue_tasks.
var QueueStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed", "aggregating"}

// QueueInspector is the part of *asynq.Inspector the queue collector reads.
type QueueInspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// QueueCollector exports the size, latency and paused state of every asynq queue,
// read from Redis at each scrape. The values are the same from every process, so
// register it in one process per deployment (or aggregate with max by (queue)).
type QueueCollector struct {
	insp    QueueInspector
	tasks   *prometheus.Desc
	latency *prometheus.Desc
	paused  *prometheus.Desc
	memory  *prometheus.Desc
	up      *prometheus.Desc
}

// NewQueueCollector returns a collector reading insp (asynq.NewInspectorFromRedisClient).
func NewQueueCollector(insp QueueInspector) *QueueCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	return &QueueCollector{
		insp: insp,
		tasks: d("queue_tasks", "Tasks in an asynq queue by state (pending, active, scheduled, retry, archived, completed, aggregating).",
			"queue", "state"),
		latency: d("queue_latency_seconds", "Age of the oldest pending task of an asynq queue (0 when none is pending).", "queue"),
		paused:  d("queue_paused", "1 while an asynq queue is paused (the pipeline switch pauses the token queues).", "queue"),
		memory:  d("queue_memory_bytes", "Approximate Redis memory used by an asynq queue's tasks (sampled by asynq).", "queue"),
		up:      d("queue_inspect_up", "1 when the last scrape could read the queues from Redis."),
	}
}

// Register adds c (e.g. a QueueCollector) to m's registry; registering the same
// collector twice is not an error. It is a no-op on a nil *Metrics.
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	if err := m.Registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return err
	}
	return nil
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.latency
	ch <- c.paused
	ch <- c.memory
	ch <- c.up
}

// Collect implements prometheus.Collector. A Redis error is reported as
// faceidq_queue_inspect_up 0, never as a failed scrape.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	queues, err := c.insp.Queues()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ok := 1.0
	for _, q := range queues {
		qi, err := c.insp.GetQueueInfo(q)
		if err != nil {
			// A queue removed between the two calls is not an error.
			if !strings.Contains(err.Error(), "does not exist") {
				ok = 0
			}
			continue
		}
		for i, n := range []int{qi.Pending, qi.Active, qi.Scheduled, qi.Retry, qi.Archived, qi.Completed, qi.Aggregating} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), q, QueueStates[i])
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, qi.Latency.Seconds(), q)
		paused := 0.0
		if qi.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q)
		ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(qi.MemoryUsage), q)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
}
