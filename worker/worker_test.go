package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// fakeUpstream answers each call with the next scripted error for its RedirectURL
// (nil: success), then succeeds.
type fakeUpstream struct {
	mu     sync.Mutex
	script map[string][]error
	calls  map[string]int
	images map[string]string
}

func (f *fakeUpstream) Apply(ctx context.Context, region string, p *faceid.ApplyWebVerificationBizTokenIntlRequestParams) (*faceid.ApplyWebVerificationBizTokenIntlResponseParams, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := *p.RedirectURL
	f.calls[u]++
	if p.CompareImageBase64 != nil {
		f.images[u] = *p.CompareImageBase64
	}
	if s := f.script[u]; len(s) > 0 {
		f.script[u] = s[1:]
		if s[0] != nil {
			return nil, s[0]
		}
	}
	tok, url, rid := "tok-"+u, "https://intl.faceid.qq.com/reflect/?token=tok", "rid-1"
	return &faceid.ApplyWebVerificationBizTokenIntlResponseParams{BizToken: &tok, VerificationURL: &url, RequestId: &rid}, nil
}

// setScript scripts the answers to calls for RedirectURL u.
func (f *fakeUpstream) setScript(u string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[u] = errs
}

// image returns the image the last call for u carried.
func (f *fakeUpstream) image(u string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[u]
}

func (f *fakeUpstream) count(u string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[u]
}

// freeLimiter grants every slot at once and counts penalties.
// With full set, it has no slot: a wait gives up at its deadline (ErrNoSlot, nothing
// reserved), as ratelimit.Limiter does.
type freeLimiter struct {
	penalties, grants atomic.Int32
	full              atomic.Bool
}

func (l *freeLimiter) WaitBefore(ctx context.Context, lane ratelimit.Lane, deadline time.Time) (ratelimit.Reservation, error) {
	if l.full.Load() {
		var expired <-chan time.Time
		if !deadline.IsZero() {
			expired = time.After(time.Until(deadline))
		}
		select {
		case <-expired:
			return ratelimit.Reservation{}, ratelimit.ErrNoSlot
		case <-ctx.Done():
			return ratelimit.Reservation{}, ctx.Err()
		}
	}
	l.grants.Add(1)
	return ratelimit.Reservation{Lane: lane}, ctx.Err()
}
func (l *freeLimiter) Observe(ratelimit.Reservation, time.Time) {}
func (l *freeLimiter) Penalize(context.Context, ratelimit.Reservation) error {
	l.penalties.Add(1)
	return nil
}
func (l *freeLimiter) Interval() time.Duration { return 50 * time.Millisecond }

type testBundle struct {
	rdb      *redis.Client
	upstream *fakeUpstream
	limiter  *freeLimiter
	producer *producer.Producer
	budgets  []string // the actions the worker asked a limiter for
}

func setup(t *testing.T) (*Worker, *testBundle) {
	t.Helper()
	return setupWith(t, nil)
}

// setupWith is setup with the worker's Config changed by mut (nil: none) before New.
func setupWith(t *testing.T, mut func(*Config, *testBundle)) (*Worker, *testBundle) {
	t.Helper()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	b := &testBundle{
		rdb:      rdb,
		upstream: &fakeUpstream{script: map[string][]error{}, calls: map[string]int{}, images: map[string]string{}},
		limiter:  &freeLimiter{},
	}
	var err error
	if b.producer, err = producer.New(producer.Config{Redis: rdb}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.producer.Close)
	cfg := Config{
		Redis: rdb, Upstream: b.upstream, Concurrency: 4,
		Limiters: func(action string) (Limiter, error) {
			b.budgets = append(b.budgets, action)
			return b.limiter, nil
		},
		MaxRetries: 2, Backoff: BackoffConfig{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		RateLimitedDelay: time.Millisecond, PausedDelay: 20 * time.Millisecond, DelayedCheckInterval: 10 * time.Millisecond,
	}
	if mut != nil {
		mut(&cfg, b)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w, b
}

func (b *testBundle) submit(t *testing.T, redirect string, mut func(*tasks.TokenRequest)) string {
	t.Helper()
	req := &tasks.TokenRequest{RedirectURL: &redirect}
	if mut != nil {
		mut(req)
	}
	job, _, err := b.producer.Submit(context.Background(), req, producer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return job.JobId
}

// waitFinal waits for job id to be final and returns it.
func (b *testBundle) waitFinal(t *testing.T, id string) *tasks.Job {
	t.Helper()
	var j *tasks.Job
	waittest.UntilReason(t, 10*time.Second, "job "+id+" final", func() (bool, string) {
		var err error
		j, err = b.producer.Get(context.Background(), id)
		return err == nil && j.Status.Final(), fmt.Sprintf("%+v %v", j, err)
	})
	return j
}

func apiErr(code string) error {
	return &faceid.APIError{Code: code, Message: code + " happened", RequestID: "rid-e"}
}

func TestWorkerErrorClasses(t *testing.T) {
	_, b := setup(t)

	t.Run("success", func(t *testing.T) {
		u := "https://example.com/ok"
		id := b.submit(t, u, func(r *tasks.TokenRequest) { x := "extra"; r.Extra = &x })
		j := b.waitFinal(t, id)
		if j.Status != tasks.StatusSucceeded || j.BizToken != "tok-"+u || j.RequestId != "rid-1" || j.Attempts != 1 || j.Extra != "extra" {
			t.Fatalf("job = %+v", j)
		}
		if j.ExpiresAt == nil || j.ExpiresAt.Sub(*j.FinishedAt) < 9*time.Minute {
			t.Fatalf("ExpiresAt = %v, FinishedAt %v", j.ExpiresAt, j.FinishedAt)
		}
	})

	t.Run("transient then success", func(t *testing.T) {
		u := "https://example.com/transient"
		b.upstream.setScript(u, apiErr("InternalError"), apiErr("InternalError"))
		j := b.waitFinal(t, b.submit(t, u, nil))
		if j.Status != tasks.StatusSucceeded || j.Attempts != 3 || b.upstream.count(u) != 3 {
			t.Fatalf("job = %+v, calls %d", j, b.upstream.count(u))
		}
	})

	t.Run("retries exhausted", func(t *testing.T) {
		u := "https://example.com/exhausted"
		b.upstream.setScript(u, apiErr("InternalError"), apiErr("InternalError"), apiErr("InternalError"), apiErr("InternalError"))
		j := b.waitFinal(t, b.submit(t, u, nil))
		if j.Status != tasks.StatusFailed || j.Error == nil || j.Error.Code != "InternalError" || b.upstream.count(u) != 3 {
			t.Fatalf("job = %+v, calls %d (want 1 + MaxRetries 2)", j, b.upstream.count(u))
		}
	})

	t.Run("permanent fails after exactly one call", func(t *testing.T) {
		u := "https://example.com/permanent"
		b.upstream.setScript(u, apiErr("InvalidParameterValue"))
		j := b.waitFinal(t, b.submit(t, u, nil))
		if j.Status != tasks.StatusFailed || j.Error.Code != "InvalidParameterValue" || j.Error.Message == "" || b.upstream.count(u) != 1 {
			t.Fatalf("job = %+v, calls %d", j, b.upstream.count(u))
		}
	})

	t.Run("rate limited does not spend attempts", func(t *testing.T) {
		u := "https://example.com/limited"
		var script []error
		for i := 0; i < 5; i++ { // more than MaxRetries: none of them may count
			script = append(script, apiErr("RequestLimitExceeded"))
		}
		b.upstream.setScript(u, script...)
		before := b.limiter.penalties.Load()
		j := b.waitFinal(t, b.submit(t, u, nil))
		if j.Status != tasks.StatusSucceeded || b.upstream.count(u) != 6 {
			t.Fatalf("job = %+v, calls %d", j, b.upstream.count(u))
		}
		if got := b.limiter.penalties.Load() - before; got != 5 {
			t.Fatalf("penalties = %d, want 5", got)
		}
	})

	t.Run("image is handed over and deleted when final", func(t *testing.T) {
		u := "https://example.com/image"
		img := "data:image/png;base64,iVBORw0KGgo="
		j := b.waitFinal(t, b.submit(t, u, func(r *tasks.TokenRequest) { r.CompareImageBase64 = &img }))
		if j.Status != tasks.StatusSucceeded {
			t.Fatalf("job = %+v", j)
		}
		if got := b.upstream.image(u); got != "iVBORw0KGgo=" {
			t.Fatalf("upstream got image %q, want the stripped base64", got)
		}
		// The image is released right after the result is written.
		waittest.Until(t, 5*time.Second, "image key gone after the job is final", func() bool {
			return b.rdb.Exists(context.Background(), keys.Image(images.Ref("iVBORw0KGgo="))).Val() == 0
		})
	})
}

func TestWorkerAccountErrorPausesPipeline(t *testing.T) {
	w, b := setup(t)
	ctx := context.Background()
	u := "https://example.com/arrears"
	b.upstream.setScript(u, apiErr("UnauthorizedOperation.Arrears"))
	id := b.submit(t, u, nil)

	waittest.Until(t, 10*time.Second, "pipeline paused", func() bool {
		st, _ := w.Pipeline().State(ctx)
		return st.Paused
	})
	if st, _ := w.Pipeline().State(ctx); st.Reason != "UnauthorizedOperation.Arrears" {
		t.Fatalf("reason = %q", st.Reason)
	}
	// More jobs are accepted while paused, and none is failed.
	id2 := b.submit(t, "https://example.com/while-paused", nil)
	j, _ := b.producer.Get(ctx, id)
	if j.Status.Final() {
		t.Fatalf("job failed for an account-level error: %+v", j)
	}
	if _, err := pipeline.New(b.rdb).Resume(ctx); err != nil {
		t.Fatal(err)
	}
	for _, x := range []string{id, id2} {
		if j := b.waitFinal(t, x); j.Status != tasks.StatusSucceeded {
			t.Fatalf("after resume: %+v", j)
		}
	}
	if n := b.upstream.count(u); n != 2 {
		t.Fatalf("paused job called upstream %d times, want 2 (the refused call and the one after resume)", n)
	}
}

func TestBackoffDelays(t *testing.T) {
	c := BackoffConfig{}.withDefaults()
	for n, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		d := c.Delay(n)
		if d < want/2 || d > want*3/2 {
			t.Errorf("Delay(%d) = %v, want within ±50%% of %v", n, d, want)
		}
	}
	if d := c.Delay(40); d > 90*time.Second {
		t.Errorf("Delay(40) = %v, want capped near 60s", d)
	}
	if !isFailure(apiErr("InternalError")) || isFailure(deferFor(0, "x")) {
		t.Error("isFailure misclassifies")
	}
}

// TestRecoverCrashedWorkersTasks leaves a task as a killed worker would: active, with a
// lease that stopped being extended. The recovery scan puts it back and it runs.
func TestRecoverCrashedWorkersTasks(t *testing.T) {
	ctx := context.Background()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	p, _ := producer.New(producer.Config{Redis: rdb})
	t.Cleanup(p.Close)
	u := "https://example.com/crashed"
	job, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u}, producer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := tasks.QueueInteractive
	// What asynq's dequeue does, by a worker that then died 40 s ago.
	if err := rdb.LMove(ctx, asynqKey(q, "pending"), asynqKey(q, "active"), "RIGHT", "LEFT").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.ZAdd(ctx, asynqKey(q, "lease"), redis.Z{Score: float64(time.Now().Add(-10 * time.Second).Unix()), Member: job.JobId})
	rdb.HSet(ctx, asynqKey(q, "t:"+job.JobId), "state", "active")
	// A live worker's task, whose lease is in the future, must stay.
	live := "j_" + strings.Repeat("a", 26)
	rdb.LPush(ctx, asynqKey(q, "active"), live)
	rdb.ZAdd(ctx, asynqKey(q, "lease"), redis.Z{Score: float64(time.Now().Add(25 * time.Second).Unix()), Member: live})

	up := &fakeUpstream{script: map[string][]error{}, calls: map[string]int{}, images: map[string]string{}}
	w, err := New(Config{Redis: rdb, Upstream: up, Limiter: &freeLimiter{}})
	if err != nil {
		t.Fatal(err)
	}
	if n := w.recoverOnce(ctx); n != 1 {
		t.Fatalf("recovered %d tasks, want 1", n)
	}
	if got := rdb.LRange(ctx, asynqKey(q, "active"), 0, -1).Val(); len(got) != 1 || got[0] != live {
		t.Fatalf("active = %v, want only the live worker's task", got)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	b := &testBundle{producer: p}
	if j := b.waitFinal(t, job.JobId); j.Status != tasks.StatusSucceeded {
		t.Fatalf("recovered job = %+v", j)
	}
}

// TestOutageRecoveryRunsBackedOffJobs: a job that met a network error waits in a long
// backoff; the first success after it moves it back at once.
func TestOutageRecoveryRunsBackedOffJobs(t *testing.T) {
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	up := &fakeUpstream{script: map[string][]error{}, calls: map[string]int{}, images: map[string]string{}}
	p, _ := producer.New(producer.Config{Redis: rdb})
	t.Cleanup(p.Close)
	w, err := New(Config{Redis: rdb, Upstream: up, Limiter: &freeLimiter{}, DelayedCheckInterval: 10 * time.Millisecond,
		Backoff: BackoffConfig{Initial: time.Hour, Max: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	b := &testBundle{producer: p}

	down := "https://example.com/during-outage"
	up.setScript(down, &faceid.APIError{Code: "ClientError.NetworkError", Message: "Fail to get response"})
	id := b.submit(t, down, nil)
	waittest.Until(t, 5*time.Second, "first call made", func() bool { return up.count(down) != 0 })
	// The upstream is back: the next job succeeds, and the one in its hour-long
	// backoff runs at once.
	b.waitFinal(t, b.submit(t, "https://example.com/after-outage", nil))
	if j := b.waitFinal(t, id); j.Status != tasks.StatusSucceeded || j.Attempts != 2 {
		t.Fatalf("backed-off job = %+v", j)
	}
}

// TestActivatingResumesByItself: UnauthorizedOperation.Activating pauses the pipeline,
// and a probe resumes it once the upstream answers again, with no operator.
func TestActivatingResumesByItself(t *testing.T) {
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	up := &fakeUpstream{script: map[string][]error{}, calls: map[string]int{}, images: map[string]string{}}
	p, _ := producer.New(producer.Config{Redis: rdb})
	t.Cleanup(p.Close)
	w, err := New(Config{Redis: rdb, Upstream: up, Limiter: &freeLimiter{}, ProbeInterval: 10 * time.Millisecond,
		PausedDelay: 20 * time.Millisecond, DelayedCheckInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	u := "https://example.com/activating"
	up.setScript(u, apiErr("UnauthorizedOperation.Activating"))
	b := &testBundle{producer: p}
	id := b.submit(t, u, nil)
	if j := b.waitFinal(t, id); j.Status != tasks.StatusSucceeded {
		t.Fatalf("job = %+v", j)
	}
	if n := up.count("https://example.com/faceidq-probe"); n < 1 {
		t.Fatalf("probe calls = %d, want at least 1", n)
	}
	if st, _ := w.Pipeline().State(context.Background()); st.Paused {
		t.Fatalf("pipeline still paused: %+v", st)
	}
}
