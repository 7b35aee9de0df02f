package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

func TestDeadline(t *testing.T) {
	t.Run("a job past its deadline expires without a slot or a call", func(t *testing.T) {
		_, b := setup(t)
		// A producer whose clock is an hour behind: the job's deadline passed long ago.
		old, err := producer.New(producer.Config{Redis: b.rdb, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		u := "https://example.com/expired"
		job, _, err := old.Submit(context.Background(), &tasks.TokenRequest{RedirectURL: &u, MaxWait: 30}, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := b.waitFinal(t, job.JobId)
		if got.Status != tasks.StatusExpired || got.Error == nil || got.Error.Code != results.CodeDeadlineExceeded {
			t.Fatalf("job %+v, want expired with %s", got, results.CodeDeadlineExceeded)
		}
		if n := b.upstream.count(u); n != 0 {
			t.Errorf("%d upstream calls, want 0", n)
		}
		if n := b.limiter.grants.Load(); n != 0 {
			t.Errorf("%d limiter waits, want 0", n)
		}
		if got.Attempts != 0 {
			t.Errorf("Attempts %d, want 0", got.Attempts)
		}
		waitServed(t, b, tasks.PriorityInteractive, 1)
	})

	t.Run("a job whose deadline passes while it waits for a slot expires", func(t *testing.T) {
		_, b := setup(t)
		b.limiter.full.Store(true)
		u := "https://example.com/waiting"
		id := b.submit(t, u, func(r *tasks.TokenRequest) { r.MaxWait = 1 })
		got := b.waitFinal(t, id)
		if got.Status != tasks.StatusExpired {
			t.Fatalf("status %s, want expired", got.Status)
		}
		if got.FinishedAt.Before(got.Deadline.Add(-deadlineMargin - time.Millisecond)) { // record times are in ms
			t.Errorf("expired at %v, more than %v before its deadline %v", got.FinishedAt, deadlineMargin, got.Deadline)
		}
		if n := b.upstream.count(u); n != 0 {
			t.Errorf("%d upstream calls, want 0", n)
		}
	})

	t.Run("a job within its deadline runs", func(t *testing.T) {
		_, b := setup(t)
		u := "https://example.com/in-time"
		id := b.submit(t, u, func(r *tasks.TokenRequest) { r.MaxWait = 30 })
		got := b.waitFinal(t, id)
		if got.Status != tasks.StatusSucceeded || got.Deadline == nil {
			t.Fatalf("job %+v, want succeeded with a Deadline", got)
		}
		waitServed(t, b, tasks.PriorityInteractive, 1)
	})
}

// waitServed waits until n jobs of lane are counted gone from their queue.
func waitServed(t *testing.T, b *testBundle, lane tasks.Priority, n int64) {
	t.Helper()
	k := keys.BacklogServed("ApplyWebVerificationBizTokenIntl", string(lane))
	waittest.UntilReason(t, 5*time.Second, fmt.Sprintf("%d jobs of %s served", n, lane), func() (bool, string) {
		got, _ := b.rdb.Get(context.Background(), k).Int64()
		return got == n, fmt.Sprintf("served %d", got)
	})
}
