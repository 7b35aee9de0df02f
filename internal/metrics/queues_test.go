package metrics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/redistest"
)

func TestQueueCollector(t *testing.T) {
	t.Run("real asynq queues", func(t *testing.T) {
		rdb := redistest.Start(t, redistest.Options{}).Client(t)
		c := asynq.NewClientFromRedisClient(rdb)
		for i := 0; i < 3; i++ {
			if _, err := c.Enqueue(asynq.NewTask("t", nil), asynq.Queue("batch")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Enqueue(asynq.NewTask("t", nil), asynq.Queue("interactive"), asynq.ProcessIn(time.Hour)); err != nil {
			t.Fatal(err)
		}
		insp := asynq.NewInspectorFromRedisClient(rdb)
		if err := insp.PauseQueue("batch"); err != nil {
			t.Fatal(err)
		}
		m := metrics.New()
		qc := metrics.NewQueueCollector(insp)
		if err := m.Register(qc); err != nil {
			t.Fatal(err)
		}
		if err := m.Register(qc); err != nil {
			t.Fatalf("second Register: %v", err)
		}
		for _, tc := range []struct {
			name   string
			series string
			want   float64
		}{
			{"up", "faceidq_queue_inspect_up", 1},
			{"batch paused", "faceidq_queue_paused/queue=batch", 1},
			{"interactive running", "faceidq_queue_paused/queue=interactive", 0},
			{"batch pending", "faceidq_queue_tasks/queue=batch,state=pending", 3},
			{"batch active", "faceidq_queue_tasks/queue=batch,state=active", 0},
			{"interactive scheduled", "faceidq_queue_tasks/queue=interactive,state=scheduled", 1},
			{"interactive pending", "faceidq_queue_tasks/queue=interactive,state=pending", 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name, labels, _ := strings.Cut(tc.series, "/")
				got, ok := series(t, m.Registry, name)[labels]
				if !ok || got != tc.want {
					t.Errorf("%s = %v (present %v), want %v", tc.series, got, ok, tc.want)
				}
			})
		}
		if lat := series(t, m.Registry, "faceidq_queue_latency_seconds")["queue=batch"]; lat <= 0 {
			t.Errorf("batch latency = %v, want > 0 with 3 pending tasks", lat)
		}
	})
	t.Run("redis down", func(t *testing.T) {
		m := metrics.New()
		if err := m.Register(metrics.NewQueueCollector(failing{})); err != nil {
			t.Fatal(err)
		}
		if got := series(t, m.Registry, "faceidq_queue_inspect_up")[""]; got != 0 {
			t.Errorf("faceidq_queue_inspect_up = %v, want 0", got)
		}
		if got := series(t, m.Registry, "faceidq_queue_tasks"); len(got) != 0 {
			t.Errorf("queue sizes without Redis: %v", got)
		}
	})
	t.Run("nil metrics", func(t *testing.T) {
		var m *metrics.Metrics
		if err := m.Register(metrics.NewQueueCollector(failing{})); err != nil {
			t.Fatal(err)
		}
	})
}

type failing struct{}

func (failing) Queues() ([]string, error) { return nil, errors.New("connection refused") }
func (failing) GetQueueInfo(string) (*asynq.QueueInfo, error) {
	return nil, errors.New("connection refused")
}
