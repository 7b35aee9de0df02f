package webhook

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/tasks"
	"github.com/hibiken/asynq"
)

func decodeTask(t *testing.T, task *asynq.Task) *payload {
	t.Helper()
	if task.Type() != tasks.TypeDeliverWebhook {
		t.Fatalf("type %q", task.Type())
	}
	p, err := decodePayload(task.Payload())
	if err != nil {
		t.Fatalf("decodePayload: %v", err)
	}
	return p
}

func TestNewTask(t *testing.T) {
	job := finalJob(t)
	job.Webhook = &tasks.Webhook{URL: "https://hooks.example.com/a", Status: StatusRetrying, Attempts: 3}
	task := mustTask(t, job, "https://hooks.example.com/a")
	p := decodeTask(t, task)

	t.Run("payload", func(t *testing.T) {
		if !strings.HasPrefix(p.ID, "msg_") || len(p.ID) != 4+26 {
			t.Errorf("id %q", p.ID)
		}
		if p.JobID != job.JobId || p.Type != EventTokenSucceeded || p.URL != "https://hooks.example.com/a" {
			t.Errorf("payload %+v", p)
		}
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(p.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if len(ev) != 3 || string(ev["type"]) != `"token.succeeded"` || ev["data"] == nil {
			t.Errorf("body %s", p.Body)
		}
		if strings.Contains(string(p.Body), `"Webhook"`) {
			t.Errorf("body carries delivery state: %s", p.Body)
		}
		if job.Webhook == nil {
			t.Error("NewTask changed the caller's job")
		}
	})
	t.Run("same final state, same event id", func(t *testing.T) {
		again := *job
		fin := job.FinishedAt.Add(300 * time.Microsecond) // below the record's precision
		again.FinishedAt = &fin
		p2 := decodeTask(t, mustTask(t, &again, "https://hooks.example.com/a"))
		if p2.ID != p.ID {
			t.Errorf("id %s, want %s", p2.ID, p.ID)
		}
	})
	t.Run("a later final state is a new event", func(t *testing.T) {
		rerun := *job
		fin := job.FinishedAt.Add(time.Hour)
		rerun.FinishedAt = &fin
		if p2 := decodeTask(t, mustTask(t, &rerun, "https://hooks.example.com/a")); p2.ID == p.ID {
			t.Error("same id for a re-run")
		}
		rerun.FinishedAt = nil
		a := decodeTask(t, mustTask(t, &rerun, "https://hooks.example.com/a"))
		b := decodeTask(t, mustTask(t, &rerun, "https://hooks.example.com/a"))
		if a.ID == b.ID {
			t.Error("jobs without FinishedAt share an id")
		}
	})
	t.Run("failed and canceled are token.failed", func(t *testing.T) {
		for _, st := range []tasks.Status{tasks.StatusFailed, tasks.StatusCanceled} {
			j := *job
			j.Status = st
			j.Error = &tasks.JobError{Code: "InvalidParameter", Message: "RedirectURL"}
			if p := decodeTask(t, mustTask(t, &j, "https://hooks.example.com/a")); p.Type != EventTokenFailed {
				t.Errorf("%s: type %q", st, p.Type)
			}
		}
	})
	t.Run("expired is token.expired", func(t *testing.T) {
		j := *job
		j.Status = tasks.StatusExpired
		j.Error = &tasks.JobError{Code: "FailedOperation.DeadlineExceeded", Message: "MaxWait"}
		if p := decodeTask(t, mustTask(t, &j, "https://hooks.example.com/a")); p.Type != EventTokenExpired {
			t.Errorf("type %q", p.Type)
		}
	})
	t.Run("errors", func(t *testing.T) {
		running := *job
		running.Status = tasks.StatusRunning
		badID := *job
		badID.JobId = "../../etc"
		for name, c := range map[string]struct {
			job *tasks.Job
			url string
		}{
			"not final":  {&running, "https://hooks.example.com/"},
			"bad job id": {&badID, "https://hooks.example.com/"},
			"nil job":    {nil, "https://hooks.example.com/"},
			"bad URL":    {job, "ftp://hooks.example.com/"},
			"userinfo":   {job, "https://a:b@hooks.example.com/"},
		} {
			if _, err := NewTask(c.job, c.url); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}

func TestTaskOptions(t *testing.T) {
	s, b := setup(t, func(c *Config, _ *testBundle) {
		c.Schedule = []time.Duration{time.Second, time.Second, time.Second}
		c.DefaultURL = "https://default.example.com/hook"
	})
	client := asynq.NewClientFromRedisClient(b.rdb)
	inspector := asynq.NewInspectorFromRedisClient(b.rdb)

	job := finalJob(t)
	task, err := s.TaskFor(job)
	if err != nil {
		t.Fatal(err)
	}
	info, err := client.Enqueue(task)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	p := decodeTask(t, task)
	if info.Queue != tasks.QueueWebhooks || info.MaxRetry != 3 || info.Timeout != TaskTimeout || info.ID != "webhook:"+p.ID {
		t.Errorf("task info queue %s, max retry %d, timeout %v, id %s", info.Queue, info.MaxRetry, info.Timeout, info.ID)
	}
	if p.URL != "https://default.example.com/hook" {
		t.Errorf("URL %q, want the default", p.URL)
	}
	// The same final job enqueued twice (a worker that ran it again) is one task.
	if _, err := client.Enqueue(mustTask(t, job, p.URL)); !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Errorf("second enqueue: %v, want ErrTaskIDConflict", err)
	}
	if qi, err := inspector.GetQueueInfo(tasks.QueueWebhooks); err != nil || qi.Size != 1 {
		t.Errorf("queue size %v, %v; want 1", qi, err)
	}
	// Default MaxRetry of NewTask.
	other := finalJob(t)
	info, err = client.Enqueue(mustTask(t, other, p.URL))
	if err != nil || info.MaxRetry != len(DefaultSchedule) {
		t.Errorf("NewTask MaxRetry %v, %v; want %d", info, err, len(DefaultSchedule))
	}
}

func TestURLFor(t *testing.T) {
	withDefault, _ := setup(t, func(c *Config, _ *testBundle) { c.DefaultURL = "https://default.example.com/" })
	without, _ := setup(t, nil)
	own := finalJob(t)
	own.Webhook = &tasks.Webhook{URL: "https://own.example.com/"}
	none := finalJob(t)
	tests := []struct {
		name string
		s    *Sender
		job  *tasks.Job
		want string
	}{
		{"own URL wins", withDefault, own, "https://own.example.com/"},
		{"default", withDefault, none, "https://default.example.com/"},
		{"own without default", without, own, "https://own.example.com/"},
		{"nothing", without, none, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.URLFor(tt.job); got != tt.want {
				t.Fatalf("URLFor = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := without.TaskFor(none); !errors.Is(err, ErrNoURL) {
		t.Errorf("TaskFor without URL: %v, want ErrNoURL", err)
	}
}
