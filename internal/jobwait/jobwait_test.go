package jobwait

import (
	"context"
	"errors"
	"github.com/faceidq/faceidq/internal/waittest"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

func TestHubWakesAllOnResubscribe(t *testing.T) {
	h := newHub(nil)
	a, unA := h.register("j_a")
	b, unB := h.register("j_b")
	defer unA()
	defer unB()
	h.setUp(true)
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Fatal("a waiter was not woken by a (re)subscription")
		}
	}
	if err := h.waitUp(context.Background()); err != nil {
		t.Fatalf("not up after setUp(true): %v", err)
	}
	h.setUp(false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.waitUp(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("waitUp after setUp(false) = %v", err)
	}
	h.setUp(true) // a second confirmation while up still wakes everyone
	h.setUp(true)
	select {
	case <-a:
	default:
		t.Fatal("not woken by the second confirmation")
	}
	h.wake("j_b")
	select {
	case <-b:
	default:
		t.Fatal("wake did not reach j_b's waiter")
	}
	unA()
	unB()
	if n, subs := h.stats(); n != 0 || subs != 3 {
		t.Fatalf("stats = %d jobs, %d subs; want 0, 3", n, subs)
	}
}

type bundle struct {
	w       *Waiter
	p       *producer.Producer
	results *results.Store
}

func setup(t *testing.T) (*bundle, func(context.Context) error) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	w, err := New(Config{Redis: rdb, Results: p.Results()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	killSubs := func(ctx context.Context) error { return rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err() }
	return &bundle{w: w, p: p, results: p.Results()}, killSubs
}

func (b *bundle) submit(t *testing.T) string {
	t.Helper()
	u := "https://example.com/done"
	job, _, err := b.p.Submit(context.Background(), &tasks.TokenRequest{RedirectURL: &u}, producer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return job.JobId
}

func (b *bundle) finish(t *testing.T, jobID string) {
	t.Helper()
	_, err := b.results.Finish(context.Background(), jobID, results.Final{Status: tasks.StatusSucceeded,
		BizToken: "tok", VerificationURL: "https://intl.faceid.qq.com/reflect/?token=tok", RequestID: "rid"})
	if err != nil {
		t.Fatal(err)
	}
}

type result struct {
	job *tasks.Job
	err error
}

func TestWaitFinal(t *testing.T) {
	b, _ := setup(t)
	id := b.submit(t)
	done := make(chan result, 1)
	go func() { j, err := b.w.Wait(context.Background(), id); done <- result{j, err} }()
	waittest.Until(t, waittest.DefaultTimeout, "the caller to wait", func() bool { n, subs := b.w.Stats(); return n == 1 && subs == 1 })
	b.finish(t, id)
	if got := <-done; got.err != nil || got.job.Status != tasks.StatusSucceeded {
		t.Fatalf("Wait = %+v, %v", got.job, got.err)
	}
	// Already final: answered by the first read.
	if j, err := b.w.Wait(context.Background(), id); err != nil || !j.Status.Final() {
		t.Fatalf("Wait on a final job = %+v, %v", j, err)
	}
	if _, err := b.w.Wait(context.Background(), "j_01HZZZZZZZZZZZZZZZZZZZZZZZ"); !errors.Is(err, results.ErrNotFound) {
		t.Fatalf("Wait on an unknown job = %v", err)
	}
}

func TestWaitForRunsOut(t *testing.T) {
	b, _ := setup(t)
	id := b.submit(t)
	j, err := b.w.WaitFor(context.Background(), id, 50*time.Millisecond)
	if err != nil || j.Status != tasks.StatusQueued {
		t.Fatalf("WaitFor = %+v, %v; want the queued job", j, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.w.WaitFor(ctx, id, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor with an ended ctx = %v", err)
	}
}

func TestWaitSurvivesLostSubscription(t *testing.T) {
	b, killSubs := setup(t)
	id := b.submit(t)
	done := make(chan result, 1)
	go func() { j, err := b.w.WaitFor(context.Background(), id, 30*time.Second); done <- result{j, err} }()
	waittest.Until(t, waittest.DefaultTimeout, "the caller to wait", func() bool { n, subs := b.w.Stats(); return n == 1 && subs == 1 })
	if err := killSubs(context.Background()); err != nil {
		t.Fatal(err)
	}
	waittest.Until(t, waittest.DefaultTimeout, "the subscription to come back", func() bool { _, subs := b.w.Stats(); return subs == 2 })
	b.finish(t, id)
	if got := <-done; got.err != nil || got.job.Status != tasks.StatusSucceeded {
		t.Fatalf("wait across a lost subscription = %+v, %v", got.job, got.err)
	}
}

func TestCloseAnswersWaiters(t *testing.T) {
	b, _ := setup(t)
	id := b.submit(t)
	done := make(chan result, 1)
	go func() { j, err := b.w.Wait(context.Background(), id); done <- result{j, err} }()
	waittest.Until(t, waittest.DefaultTimeout, "the caller to wait", func() bool { n, _ := b.w.Stats(); return n == 1 })
	if err := b.w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if !errors.Is(got.err, ErrClosed) || got.job == nil || got.job.Status != tasks.StatusQueued {
			t.Fatalf("Wait after Close = %+v, %v", got.job, got.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a waiting caller was not answered after Close")
	}
	if err := b.w.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := b.w.Wait(context.Background(), id); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
}

// TestWaitUntilWakesOnVerification checks that a recorded fetch answer wakes a
// caller waiting on a condition of an already-final job, well before its deadline.
func TestWaitUntilWakesOnVerification(t *testing.T) {
	b, _ := setup(t)
	id := b.submit(t)
	b.finish(t, id)
	fetched := func(j *tasks.Job) bool { return j.Verification != nil && j.Verification.FetchedAt != nil }
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		j, err := b.w.WaitUntil(context.Background(), id, time.Minute, fetched)
		done <- result{j, err}
	}()
	waittest.Until(t, waittest.DefaultTimeout, "the caller to wait", func() bool { n, _ := b.w.Stats(); return n == 1 })
	if _, err := b.results.RecordVerification(context.Background(), id, results.Verified{Status: tasks.VerificationPassed, RequestID: "r2"}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || !fetched(r.job) {
			t.Fatalf("WaitUntil = %+v, %v", r.job, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("WaitUntil not woken %s after the answer", time.Since(start))
	}
}
