package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

type quietLogger struct{}

func (quietLogger) Debug(...any) {}
func (quietLogger) Info(...any)  {}
func (quietLogger) Warn(...any)  {}
func (quietLogger) Error(...any) {}
func (quietLogger) Fatal(...any) {}

// startAsynq runs a real asynq server on rdb that hands TypeDeliverWebhook tasks to s
// and takes their retry delays from s.RetryDelay, as the worker will.
func startAsynq(t *testing.T, s *Sender, rdb redis.UniversalClient) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 2,
		Queues:      map[string]int{tasks.QueueWebhooks: 1},
		RetryDelayFunc: func(n int, err error, task *asynq.Task) time.Duration {
			if task.Type() == tasks.TypeDeliverWebhook {
				return s.RetryDelay(n, err, task)
			}
			return asynq.DefaultRetryDelayFunc(n, err, task)
		},
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          2 * time.Second,
		Logger:                   quietLogger{},
		LogLevel:                 asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(tasks.TypeDeliverWebhook, s)
	if err := srv.Start(mux); err != nil {
		t.Fatalf("asynq server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
}

// setupAsynq is setup with a schedule of milliseconds and a running asynq server.
func setupAsynq(t *testing.T, retries int) (*Sender, *testBundle, *asynq.Client, *asynq.Inspector) {
	t.Helper()
	s, b := setup(t, func(c *Config, b *testBundle) {
		c.Schedule = make([]time.Duration, retries)
		for i := range c.Schedule {
			c.Schedule[i] = 20 * time.Millisecond
		}
		c.Enqueuer = asynq.NewClientFromRedisClient(b.rdb)
	})
	startAsynq(t, s, b.rdb)
	return s, b, asynq.NewClientFromRedisClient(b.rdb), asynq.NewInspectorFromRedisClient(b.rdb)
}

func taskState(t *testing.T, in *asynq.Inspector, id string) asynq.TaskState {
	t.Helper()
	info, err := in.GetTaskInfo(tasks.QueueWebhooks, id)
	if err != nil {
		return 0
	}
	return info.State
}

func TestAsynqRetriesUntilDelivered(t *testing.T) {
	s, b, client, _ := setupAsynq(t, 7)
	rc := newReceiver(t, b.secrets, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	job := finalJob(t)
	task, err := NewTask(job, rc.srv.URL, asynq.MaxRetry(len(s.schedule)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(task); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waittest.Until(t, 10*time.Second, "the delivery", func() bool { return b.store.last(job.JobId).Status == StatusDelivered })

	got := rc.deliveries()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	id := got[0].header.Get("webhook-id")
	successes := 0
	for i, d := range got {
		if d.verifyErr != nil {
			t.Errorf("request %d: %v", i+1, d.verifyErr)
		}
		if d.header.Get("webhook-id") != id {
			t.Errorf("request %d: webhook-id %q, want %q", i+1, d.header.Get("webhook-id"), id)
		}
		if string(d.body) != string(got[0].body) {
			t.Errorf("request %d: body differs from the first", i+1)
		}
		if d.status/100 == 2 {
			successes++
		}
	}
	if successes != 1 {
		t.Errorf("%d successful deliveries, want exactly 1", successes)
	}
	if h := strings.Join(b.store.statuses(job.JobId), ","); h != "retrying,retrying,delivered" {
		t.Errorf("recorded %s", h)
	}
	if w := b.store.last(job.JobId); w.Attempts != 3 || w.LastError != "" {
		t.Errorf("last record %+v", w)
	}
	if o := strings.Join(b.obs.list(), ","); o != "failure,failure,success" {
		t.Errorf("outcomes %s", o)
	}
}

func TestAsynqGoneStopsRetries(t *testing.T) {
	_, b, client, inspector := setupAsynq(t, 7)
	rc := newReceiver(t, b.secrets, status(http.StatusGone))
	job := finalJob(t)
	info, err := client.Enqueue(mustTask(t, job, rc.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	waittest.Until(t, 10*time.Second, "the task to be archived", func() bool {
		return taskState(t, inspector, info.ID) == asynq.TaskStateArchived
	})
	if n := rc.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if w := b.store.last(job.JobId); w.Status != StatusGone || w.Attempts != 1 {
		t.Errorf("recorded %+v", w)
	}
	if b.mr.Exists("faceidq:{webhook:dead}") {
		t.Error("a gone delivery is kept for replay")
	}
}

func TestAsynqExhaustedThenReplayed(t *testing.T) {
	s, b, client, inspector := setupAsynq(t, 1) // two attempts
	rc := newReceiver(t, b.secrets, status(http.StatusBadGateway))
	jobs := []*tasks.Job{finalJob(t), finalJob(t)}
	var ids []string
	for _, job := range jobs {
		task, err := s.TaskFor(withURL(job, rc.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		info, err := client.Enqueue(task)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	for _, id := range ids {
		waittest.Until(t, 10*time.Second, "exhaustion", func() bool {
			return taskState(t, inspector, id) == asynq.TaskStateArchived
		})
	}
	ctx := context.Background()
	dead, err := s.Exhausted(ctx)
	if err != nil || len(dead) != 2 {
		t.Fatalf("Exhausted = %v, %v; want both jobs", dead, err)
	}
	for _, job := range jobs {
		w := b.store.last(job.JobId)
		if w.Status != StatusExhausted || w.Attempts != 2 || !strings.HasPrefix(w.LastError, "HTTP 502") {
			t.Errorf("recorded %+v", w)
		}
	}
	if o := strings.Join(b.obs.list(), ","); strings.Count(o, "failure") != 2 || strings.Count(o, "exhausted") != 2 {
		t.Errorf("outcomes %s", o)
	}
	t.Run("List without a secret", func(t *testing.T) {
		d, err := NewDeadLetters(DeadConfig{Redis: s.rdb})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.List(ctx)
		if err != nil || len(got) != 2 {
			t.Fatalf("List = %+v, %v", got, err)
		}
		for _, dd := range got {
			if dd.Status != StatusExhausted || dd.Attempts != 2 || dd.URL != rc.srv.URL || !strings.HasPrefix(dd.LastError, "HTTP 502") || dd.LastAt.IsZero() {
				t.Errorf("dead delivery %+v", dd)
			}
		}
		if err := d.Replay(ctx, got[0].JobId); !errors.Is(err, ErrNoEnqueuer) {
			t.Errorf("Replay without an enqueuer = %v", err)
		}
	})
	firstIDs := map[string]string{}
	for _, d := range rc.deliveries() {
		firstIDs[d.header.Get("webhook-id")] = string(d.body)
	}

	rc.setRespond(status(http.StatusOK))
	t.Run("Replay", func(t *testing.T) {
		if err := s.Replay(ctx, jobs[0].JobId); err != nil {
			t.Fatalf("Replay: %v", err)
		}
		// A second replay of the same exhaustion finds nothing left.
		if err := s.Replay(ctx, jobs[0].JobId); !errors.Is(err, ErrNotExhausted) {
			t.Errorf("second Replay: %v, want ErrNotExhausted", err)
		}
		waittest.Until(t, 10*time.Second, "the replayed delivery", func() bool {
			return b.store.last(jobs[0].JobId).Status == StatusDelivered
		})
		if w := b.store.last(jobs[0].JobId); w.Attempts != 3 {
			t.Errorf("attempts %d, want 3 (2 before the replay)", w.Attempts)
		}
		if h := b.store.statuses(jobs[0].JobId); h[len(h)-2] != StatusPending {
			t.Errorf("history %v: no pending before the replayed attempt", h)
		}
	})
	t.Run("ReplayAll", func(t *testing.T) {
		n, err := s.ReplayAll(ctx)
		if err != nil || n != 1 {
			t.Fatalf("ReplayAll = %d, %v; want 1", n, err)
		}
		waittest.Until(t, 10*time.Second, "the replayed delivery", func() bool {
			return b.store.last(jobs[1].JobId).Status == StatusDelivered
		})
		if dead, _ := s.Exhausted(ctx); len(dead) != 0 {
			t.Errorf("still exhausted: %v", dead)
		}
	})
	t.Run("same webhook-id and body on replay", func(t *testing.T) {
		for _, d := range rc.deliveries() {
			if d.verifyErr != nil {
				t.Errorf("%v", d.verifyErr)
			}
			body, ok := firstIDs[d.header.Get("webhook-id")]
			if !ok || body != string(d.body) {
				t.Errorf("delivery with a new id or body: %s", d.header.Get("webhook-id"))
			}
		}
		if n := rc.count(); n != 6 {
			t.Errorf("receiver got %d requests, want 6", n)
		}
	})
	t.Run("nothing to replay", func(t *testing.T) {
		if err := s.Replay(ctx, tasks.NewJobID()); !errors.Is(err, ErrNotExhausted) {
			t.Errorf("Replay = %v, want ErrNotExhausted", err)
		}
	})
}

func withURL(job *tasks.Job, url string) *tasks.Job {
	job.Webhook = &tasks.Webhook{URL: url, Status: StatusPending}
	return job
}

func TestReplayWithoutEnqueuer(t *testing.T) {
	s, _ := setup(t, nil)
	if err := s.Replay(context.Background(), tasks.NewJobID()); !errors.Is(err, ErrNoEnqueuer) {
		t.Fatalf("Replay = %v, want ErrNoEnqueuer", err)
	}
}
