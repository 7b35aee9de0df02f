package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// slowApply is fakeUpstream with Apply calls that take delay.
type slowApply struct {
	*fakeUpstream
	delay atomic.Int64 // nanoseconds
}

func (s *slowApply) Apply(ctx context.Context, region string, p *faceid.ApplyWebVerificationBizTokenIntlRequestParams) (*faceid.ApplyWebVerificationBizTokenIntlResponseParams, error) {
	select {
	case <-time.After(time.Duration(s.delay.Load())):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.fakeUpstream.Apply(ctx, region, p)
}

// TestActionsDrainIndependently: with a large Apply backlog queued first, Get tasks
// queued after it on the same lane run at once, on their own queue and slots, not
// after the backlog.
func TestActionsDrainIndependently(t *testing.T) {
	for _, lane := range []tasks.Priority{tasks.PriorityBatch, tasks.PriorityInteractive} {
		t.Run(string(lane), func(t *testing.T) { testActionsDrainIndependently(t, lane) })
	}
}

func testActionsDrainIndependently(t *testing.T, lane tasks.Priority) {
	ctx := context.Background()
	var up *slowApply
	_, b := setupWith(t, func(c *Config, b *testBundle) {
		up = &slowApply{fakeUpstream: b.upstream}
		c.Upstream, c.Limiters, c.Limiter, c.VerifyConcurrency = up, nil, &freeLimiter{}, 4
	})
	pr, rdb := b.producer, b.rdb

	// Jobs with a BizToken whose results the Get tasks fetch.
	const fetches, backlog = 8, 300
	minted := make([]string, fetches)
	for i := range minted {
		u := fmt.Sprintf("https://example.com/independent-%s-%d", lane, i)
		scriptGet("tok-"+u, getAnswer{code: code(0), sim: 90})
		minted[i] = b.submit(t, u, nil)
	}
	for _, id := range minted {
		if j := b.waitFinal(t, id); j.Status != tasks.StatusSucceeded {
			t.Fatalf("job %+v", j)
		}
	}

	// The Apply backlog: 300 calls of 50 ms on 4 slots, about 4 s.
	up.delay.Store(int64(50 * time.Millisecond))
	for i := range backlog {
		b.submit(t, fmt.Sprintf("https://example.com/backlog-%s-%d", lane, i), func(r *tasks.TokenRequest) { r.Priority = lane })
	}
	for _, id := range minted {
		if err := pr.Fetch(ctx, id, tasks.TriggerNow, lane); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range minted {
		b.waitVerification(t, id, tasks.VerificationPassed)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	qi, err := insp.GetQueueInfo(tasks.Queue(tasks.TypeApplyToken, lane))
	if err != nil {
		t.Fatal(err)
	}
	if qi.Pending == 0 {
		t.Fatalf("the Apply backlog was drained before the %d fetches were done: they waited behind it", fetches)
	}
	t.Logf("%d fetches done with %d of %d Apply tasks still pending", fetches, qi.Pending, backlog)
}

// laneLimiter grants interactive slots at once and holds every batch waiter until
// its context ends (a batch lane far behind its budget).
type laneLimiter struct {
	freeLimiter
	batchWaiting atomic.Int32
}

func (l *laneLimiter) WaitBefore(ctx context.Context, lane ratelimit.Lane, deadline time.Time) (ratelimit.Reservation, error) {
	if lane == ratelimit.Batch {
		l.batchWaiting.Add(1)
		defer l.batchWaiting.Add(-1)
		<-ctx.Done()
		return ratelimit.Reservation{}, ctx.Err()
	}
	return l.freeLimiter.WaitBefore(ctx, lane, deadline)
}

// TestInteractiveNotBehindBatchWaiters: with every Apply slot of the batch lane held
// by a task waiting for its rate slot, an interactive job still runs at once: it has
// slots of its own (servers.go).
func TestInteractiveNotBehindBatchWaiters(t *testing.T) {
	const slots = 2
	lim := &laneLimiter{}
	_, b := setupWith(t, func(c *Config, _ *testBundle) {
		c.Limiters, c.Limiter = nil, lim
		c.Concurrency, c.MaxSlotWait, c.ShutdownTimeout = slots, time.Hour, time.Second
	})
	for i := range 2 * slots {
		b.submit(t, fmt.Sprintf("https://example.com/waiting-%d", i), func(r *tasks.TokenRequest) { r.Priority = tasks.PriorityBatch })
	}
	waittest.Until(t, 10*time.Second, "the batch tasks to hold every slot", func() bool { return lim.batchWaiting.Load() == slots })
	id := b.submit(t, "https://example.com/person", func(r *tasks.TokenRequest) { r.Priority = tasks.PriorityInteractive })
	if j := b.waitFinal(t, id); j.Status != tasks.StatusSucceeded {
		t.Fatalf("interactive job %+v", j)
	}
	if n := lim.batchWaiting.Load(); n != slots {
		t.Fatalf("%d batch tasks waiting, want %d (the interactive job took no batch slot)", n, slots)
	}
}
