package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// countingLimiter grants every slot at once and counts the waits.
type countingLimiter struct {
	freeLimiter
	waits atomic.Int32
}

func (l *countingLimiter) WaitBefore(ctx context.Context, lane ratelimit.Lane, d time.Time) (ratelimit.Reservation, error) {
	l.waits.Add(1)
	return l.freeLimiter.WaitBefore(ctx, lane, d)
}

// echoAction is a second action as issue 12's would be added: its own task type and
// budget, the pipeline's steps. Its payload is the job id; its calls answer with the
// scripted errors, then succeed.
type echoAction struct {
	mu      sync.Mutex
	script  []error
	calls   int
	outcome map[string]string // job id → "ok" or the failing code
	retried []string
}

func (*echoAction) taskType() string { return "test:echo" }
func (*echoAction) name() string     { return "EchoIntl" }
func (*echoAction) decode(_ string, b []byte) (string, job, error) {
	if len(b) == 0 {
		return "", job{}, errors.New("empty payload")
	}
	return string(b), job{id: string(b), lane: tasks.PriorityInteractive, createdAt: time.Now()}, nil
}
func (*echoAction) validate(context.Context, string, zerolog.Logger) (bool, error) { return true, nil }
func (*echoAction) inputs(context.Context, string, zerolog.Logger) error           { return nil }
func (*echoAction) begin(context.Context, string) (int, error)                     { return 1, nil }
func (*echoAction) route(string) route                                             { return route{} }
func (a *echoAction) call(context.Context, string, *budget) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if len(a.script) > 0 {
		err := a.script[0]
		a.script = a.script[1:]
		return "", err
	}
	return "ok", nil
}
func (a *echoAction) succeed(_ context.Context, id string, _ *budget, r string, _ zerolog.Logger) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outcome[id] = r
	return nil
}
func (a *echoAction) fail(_ context.Context, id string, _ zerolog.Logger, code, _ string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outcome[id] = code
	return asynq.SkipRetry
}
func (a *echoAction) retrying(_ context.Context, id, code, _ string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retried = append(a.retried, code)
}
func (*echoAction) finished(context.Context, string, zerolog.Logger) {}

func (a *echoAction) result(id string) (string, []string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.outcome[id], slices.Clone(a.retried), a.calls
}

// TestActionsHaveTheirOwnBudget: every action asks Config.Limiters for the budget of
// its name, and a second action runs through the same pipeline on its own limiter.
func TestActionsHaveTheirOwnBudget(t *testing.T) {
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	lims := map[string]*countingLimiter{}
	var asked []string
	w, err := New(Config{
		Redis: rdb, Upstream: &fakeUpstream{}, DelayedCheckInterval: 10 * time.Millisecond,
		RateLimitedDelay: time.Millisecond, Backoff: BackoffConfig{Initial: time.Millisecond, Max: time.Millisecond},
		Limiters: func(action string) (Limiter, error) {
			asked = append(asked, action)
			lims[action] = &countingLimiter{}
			return lims[action], nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	echo := &echoAction{outcome: map[string]string{},
		script: []error{apiErr("RequestLimitExceeded"), apiErr("InternalError")}}
	if err := register(w, echo); err != nil {
		t.Fatal(err)
	}
	if want := []string{faceid.Action, faceid.ActionGet, "EchoIntl"}; !slices.Equal(asked, want) {
		t.Fatalf("limiters asked for %v, want %v", asked, want)
	}
	served := map[string]int{} // a queue served by two servers would hand a task to one without its handler
	for _, s := range w.servers {
		for _, q := range s.queues {
			if served[q]++; served[q] > 1 {
				t.Fatalf("queue %s has %d servers", q, served[q])
			}
		}
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()

	if _, err := w.client.Enqueue(asynq.NewTask("test:echo", []byte("e1"), asynq.Queue(tasks.QueueInteractive), asynq.MaxRetry(5))); err != nil {
		t.Fatal(err)
	}
	waittest.UntilReason(t, 10*time.Second, "echo task done", func() (bool, string) {
		out, retrying, _ := echo.result("e1")
		return out == "ok", fmt.Sprintf("%q %v", out, retrying)
	})
	if _, retrying, calls := echo.result("e1"); calls != 3 || !slices.Equal(retrying, []string{"RequestLimitExceeded", "InternalError"}) {
		t.Fatalf("calls %d, retrying %v; want 3 calls after a rate limit and a transient error", calls, retrying)
	}
	if got := lims["EchoIntl"]; got.waits.Load() != 3 || got.penalties.Load() != 1 {
		t.Fatalf("echo budget: %d waits, %d penalties; want 3 and 1", got.waits.Load(), got.penalties.Load())
	}
	if n := lims[faceid.Action].waits.Load(); n != 0 {
		t.Fatalf("Apply's budget was used %d times by another action", n)
	}
}

func TestNewRefusesAMissingBudget(t *testing.T) {
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	boom := errors.New("boom")
	for name, cfg := range map[string]Config{
		"no limiter":     {Redis: rdb, Upstream: &fakeUpstream{}},
		"limiter error":  {Redis: rdb, Upstream: &fakeUpstream{}, Limiters: func(string) (Limiter, error) { return nil, boom }},
		"negative delay": {Redis: rdb, Upstream: &fakeUpstream{}, Limiter: &freeLimiter{}, PausedDelay: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
