package producer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
)

type testBundle struct {
	rdb  *redis.Client
	insp *asynq.Inspector
}

func setup(t *testing.T) (*Producer, *testBundle) {
	t.Helper()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	p, err := New(Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, &testBundle{rdb: rdb, insp: asynq.NewInspectorFromRedisClient(rdb)}
}

func (b *testBundle) pending(t *testing.T, q string) int {
	t.Helper()
	info, err := b.insp.GetQueueInfo(q)
	if err != nil {
		return 0
	}
	return info.Pending
}

func (b *testBundle) resultKeys(t *testing.T) int {
	t.Helper()
	return len(b.rdb.Keys(context.Background(), "faceidq:result:*").Val())
}

func str(s string) *string { return &s }

func TestSubmit(t *testing.T) {
	ctx := context.Background()

	t.Run("enqueues on the lane of its priority", func(t *testing.T) {
		p, b := setup(t)
		j, created, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: str("https://example.com/a")}, Options{})
		if err != nil || !created || j.Status != tasks.StatusQueued || j.Region != faceid.DefaultRegion {
			t.Fatalf("Submit = %+v, %v, %v", j, created, err)
		}
		if _, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: str("https://example.com/b"), Priority: tasks.PriorityBatch}, Options{}); err != nil {
			t.Fatal(err)
		}
		if b.pending(t, tasks.QueueInteractive) != 1 || b.pending(t, tasks.QueueBatch) != 1 {
			t.Fatalf("pending: interactive %d, batch %d", b.pending(t, tasks.QueueInteractive), b.pending(t, tasks.QueueBatch))
		}
		got, err := p.Get(ctx, j.JobId)
		if err != nil || got.Status != tasks.StatusQueued {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	})

	t.Run("the pipelined task is the one asynq's client writes", func(t *testing.T) {
		// Without an Idempotency-Key the task shares the record's pipeline
		// (asynqwire); with one, asynq's client enqueues it. Both must be the same task.
		p, b := setup(t)
		for _, prio := range []tasks.Priority{tasks.PriorityInteractive, tasks.PriorityBatch} {
			req := &tasks.TokenRequest{RedirectURL: str("https://example.com/same"), Priority: prio}
			plain, _, err := p.Submit(ctx, req, Options{})
			if err != nil {
				t.Fatal(err)
			}
			keyed, _, err := p.Submit(ctx, req, Options{IdempotencyKey: "k-" + string(prio)})
			if err != nil {
				t.Fatal(err)
			}
			pi, err := b.insp.GetTaskInfo(tasks.Queue(tasks.TypeApplyToken, prio), plain.JobId)
			if err != nil {
				t.Fatal(err)
			}
			ki, err := b.insp.GetTaskInfo(tasks.Queue(tasks.TypeApplyToken, prio), keyed.JobId)
			if err != nil {
				t.Fatal(err)
			}
			if pi.Type != ki.Type || pi.MaxRetry != ki.MaxRetry || pi.Timeout != ki.Timeout || pi.State != ki.State ||
				pi.Deadline != ki.Deadline || pi.Queue != ki.Queue || pi.Type != tasks.TypeApplyToken {
				t.Errorf("pipelined task %+v differs from asynq's %+v", pi, ki)
			}
			pl, err := tasks.DecodeApplyTask(plain.JobId, pi.Payload)
			if err != nil || pl.JobID != plain.JobId || pl.Priority != prio || !pl.CreatedAt.Equal(plain.CreatedAt.Truncate(time.Millisecond)) {
				t.Errorf("task payload %q decodes to %+v (%v), want job %s on %s", pi.Payload, pl, err, plain.JobId, prio)
			}
		}
	})

	t.Run("bad input writes nothing", func(t *testing.T) {
		p, b := setup(t)
		for _, req := range []*tasks.TokenRequest{
			{},
			{RedirectURL: str("not a url")},
			{RedirectURL: str("https://example.com"), Region: "mars-1"},
			{RedirectURL: str("https://example.com"), CompareImageBase64: str("%%%")},
			{RedirectURL: str("https://example.com"), CallbackURL: "https://hooks.example.com"}, // webhooks off
		} {
			_, _, err := p.Submit(ctx, req, Options{})
			var fe *faceid.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Reason == "" {
				t.Errorf("Submit(%+v) = %v, want a FieldError", req, err)
			}
		}
		if _, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: str("https://example.com")}, Options{IdempotencyKey: strings.Repeat("k", 300)}); err == nil {
			t.Error("an over-long Idempotency-Key was accepted")
		}
		if n := len(b.rdb.Keys(ctx, "*").Val()); n != 0 {
			t.Fatalf("%d keys written for refused requests: %v", n, b.rdb.Keys(ctx, "*").Val())
		}
	})

	t.Run("same Idempotency-Key gives the same job", func(t *testing.T) {
		p, b := setup(t)
		req := &tasks.TokenRequest{RedirectURL: str("https://example.com/idem")}
		j1, c1, err := p.Submit(ctx, req, Options{IdempotencyKey: "signup-42"})
		if err != nil || !c1 {
			t.Fatal(err)
		}
		j2, c2, err := p.Submit(ctx, req, Options{IdempotencyKey: "signup-42"})
		if err != nil || c2 || j2.JobId != j1.JobId {
			t.Fatalf("repeat = %+v, created %v, %v; want job %s", j2, c2, err, j1.JobId)
		}
		if b.resultKeys(t) != 1 || b.pending(t, tasks.QueueInteractive) != 1 {
			t.Fatalf("%d records, %d pending; want 1 and 1", b.resultKeys(t), b.pending(t, tasks.QueueInteractive))
		}
		_, _, err = p.Submit(ctx, &tasks.TokenRequest{RedirectURL: str("https://example.com/other")}, Options{IdempotencyKey: "signup-42"})
		if !errors.Is(err, ErrIdempotencyMismatch) {
			t.Fatalf("reuse with another request = %v, want ErrIdempotencyMismatch", err)
		}
	})

	t.Run("a repeat re-enqueues a job whose first request died before its enqueue", func(t *testing.T) {
		p, b := setup(t)
		req := &tasks.TokenRequest{RedirectURL: str("https://example.com/crash")}
		j1, _, err := p.Submit(ctx, req, Options{IdempotencyKey: "k-crash"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.insp.DeleteTask(tasks.QueueInteractive, j1.JobId); err != nil {
			t.Fatal(err)
		}
		j2, _, err := p.Submit(ctx, req, Options{IdempotencyKey: "k-crash"})
		if err != nil || j2.JobId != j1.JobId {
			t.Fatalf("repeat = %+v, %v", j2, err)
		}
		if b.pending(t, tasks.QueueInteractive) != 1 {
			t.Fatal("the job's task was not restored")
		}
	})

	t.Run("concurrent requests with one key create one job", func(t *testing.T) {
		p, b := setup(t)
		req := &tasks.TokenRequest{RedirectURL: str("https://example.com/race")}
		ids := make(chan string, 20)
		for i := 0; i < 20; i++ {
			go func() {
				j, _, err := p.Submit(ctx, req, Options{IdempotencyKey: "race"})
				if err != nil {
					ids <- "error: " + err.Error()
					return
				}
				ids <- j.JobId
			}()
		}
		first := <-ids
		for i := 1; i < 20; i++ {
			if got := <-ids; got != first && !strings.Contains(got, "still being processed") {
				t.Fatalf("got job %s and %s for one key", first, got)
			}
		}
		if b.resultKeys(t) != 1 {
			t.Fatalf("%d records for one key", b.resultKeys(t))
		}
	})
}

// Example shows a producer enqueueing one job and reading it back.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	p, err := New(Config{Redis: rdb})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	redirect := "https://example.com/verified"
	job, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &redirect}, Options{IdempotencyKey: "signup-1234"})
	if err != nil {
		return // a *faceid.FieldError names the field and the reason
	}
	_, _ = p.Get(ctx, job.JobId) // poll; or subscribe to faceidq:done
}

// TestSubmitEstimates: Submit's answer carries the job's Position and
// EstimatedStartAt, read in the pipeline that wrote the job (no second round trip).
func TestSubmitEstimates(t *testing.T) {
	p, _ := setup(t)
	ctx := context.Background()
	var last *tasks.Job
	for range 3 {
		j, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: str("https://example.com/e")}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		last = j
	}
	if !last.Estimated || last.Position != 2 || last.EstimatedStartAt == nil {
		t.Fatalf("third job: Estimated %v, Position %d, EstimatedStartAt %v; want true, 2, set", last.Estimated, last.Position, last.EstimatedStartAt)
	}
	e, err := p.Backlog().Estimate(ctx, tasks.PriorityInteractive, last.Ticket)
	if err != nil || e.Position != last.Position {
		t.Fatalf("a later Estimate = %+v, %v; the answer said %d", e, err, last.Position)
	}
}

// TestTaskInRecordPipelineOnlyWhenOrdered: a Cluster pipeline sends to each node at
// once, so the task would not follow its record: the producer pipelines it only on a
// client whose pipelines run in order.
func TestTaskInRecordPipelineOnlyWhenOrdered(t *testing.T) {
	for _, c := range []struct {
		name string
		rdb  redis.UniversalClient
		want bool
	}{
		{"client", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), true},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}), false},
		{"ring", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}), false},
	} {
		p, err := New(Config{Redis: c.rdb})
		if err != nil {
			t.Fatal(err)
		}
		if p.ordered != c.want {
			t.Errorf("%s: ordered = %v, want %v", c.name, p.ordered, c.want)
		}
		p.Close()
		_ = c.rdb.Close()
	}
}
