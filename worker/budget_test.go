package worker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
	"github.com/faceidq/faceidq/worker"
)

var secondAccount = simulator.Credential{SecretID: "AKIDfaceidqSecondTestAccount0042", SecretKey: "faceidqSecondTestSecretKey0042"}

// pool is a worker with two credential sets in front of a simulator that knows both.
type pool struct {
	rdb      *redis.Client
	sim      *simulator.Server
	producer *producer.Producer
	w        *worker.Worker
	ids      []string // the SecretIds, in the order of the sets
}

func setupPool(t *testing.T, shared bool) *pool {
	t.Helper()
	mr := redistest.Mini(t)
	p := &pool{rdb: redis.NewClient(&redis.Options{Addr: mr.Addr()})}
	t.Cleanup(func() { _ = p.rdb.Close() })
	var err error
	if p.sim, err = simulator.New(simulator.Config{Rate: 20, Credentials: []simulator.Credential{secondAccount}, SharedLimit: shared}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(p.sim)
	t.Cleanup(hs.Close)
	id, key := p.sim.Credential()
	var sets []worker.Budget
	for _, c := range []simulator.Credential{{SecretID: id, SecretKey: key}, secondAccount} {
		client, err := faceid.New(faceid.Config{Endpoint: hs.URL, SecretID: c.SecretID, SecretKey: c.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, worker.Budget{Account: client.Account(), Masked: ratelimit.MaskAccount(c.SecretID), Upstream: client,
			Limiters: worker.RateLimiters(p.rdb, client.Account(), client.Endpoint(), ratelimit.Config{Rate: 20}, nil)})
		p.ids = append(p.ids, c.SecretID)
	}
	if p.producer, err = producer.New(producer.Config{Redis: p.rdb}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.producer.Close)
	if p.w, err = worker.New(worker.Config{Redis: p.rdb, Budgets: sets, Concurrency: 48,
		Backoff: worker.BackoffConfig{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// mint submits n batch jobs, runs the worker and waits until every job is final.
func (p *pool) mint(t *testing.T, n int, timeout time.Duration) []*tasks.Job {
	t.Helper()
	ctx := context.Background()
	u := "https://example.com/done"
	ids := make([]string, n)
	for i := range ids {
		j, _, err := p.producer.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Priority: tasks.PriorityBatch}, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = j.JobId
	}
	if err := p.w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.w.Shutdown)
	jobs := make([]*tasks.Job, n)
	waittest.UntilReason(t, timeout, fmt.Sprintf("%d jobs final", n), func() (bool, string) {
		for i, id := range ids {
			if jobs[i] != nil {
				continue
			}
			j, err := p.producer.Results().Get(ctx, id)
			if err != nil || !j.Status.Final() {
				return false, fmt.Sprintf("job %d: %+v %v", i, j, err)
			}
			jobs[i] = j
		}
		return true, ""
	})
	for i, j := range jobs {
		if j.Status != tasks.StatusSucceeded {
			t.Fatalf("job %d = %+v (error %+v)", i, j, j.Error)
		}
	}
	return jobs
}

// applyBudgets returns the simulator's Apply counters by SecretId.
func (p *pool) applyBudgets() map[string]simulator.BudgetStats {
	out := map[string]simulator.BudgetStats{}
	for _, b := range p.sim.Stats().Budgets {
		if b.Action == faceid.Action {
			out[b.SecretID] = b
		}
	}
	return out
}

// TestTwoCredentialSetsPool: two credential sets drain 400 jobs as one pool of 2×20/s:
// each SecretId carries a large share and never more than 20 in a sliding second at
// the simulator, each job's answer names the account that minted it, and its result
// is fetched with that same account (the simulator knows a token only to its minter).
func TestTwoCredentialSetsPool(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 400 jobs at 40/s and fetches their results")
	}
	const n = 400
	p := setupPool(t, false)
	start := time.Now()
	jobs := p.mint(t, n, 3*time.Minute)
	took := time.Since(start)

	st := p.sim.Stats()
	per := p.applyBudgets()
	for _, id := range p.ids {
		b := per[id]
		if b.Admitted < n/4 || b.MaxAdmittedInAnySecond > 20 {
			t.Fatalf("SecretId %s: %+v; want a large share (≥ %d), never above 20 in a second", ratelimit.MaskAccount(id), b, n/4)
		}
	}
	// Each set's limiter paces its own calls; a stalled send under a loaded (race)
	// run may arrive as a 21st and be refused, then retried.
	if refused := st.ByCode["RequestLimitExceeded"]; refused > 3 {
		t.Fatalf("%d RequestLimitExceeded with one budget per set", refused)
	}
	span := st.LastAt.Sub(st.FirstAt)
	t.Logf("%d jobs in %v, %d calls in %v at the simulator (%.1f/s); per SecretId: %+v", n, took.Round(time.Millisecond),
		st.Requests, span.Round(time.Millisecond), float64(st.Requests)/span.Seconds(), per)

	// The person completes each flow; the result is fetched with the minting account.
	ctx := context.Background()
	masked := map[string]string{ratelimit.MaskAccount(p.ids[0]): p.ids[0], ratelimit.MaskAccount(p.ids[1]): p.ids[1]}
	client := asynq.NewClientFromRedisClient(p.rdb)
	for i, j := range jobs {
		f, ok := p.sim.Flow(j.BizToken)
		if !ok || masked[j.Account] != f.MintedBy {
			t.Fatalf("job %d: Account %q, minted by %s (flow known: %v)", i, j.Account, ratelimit.MaskAccount(f.MintedBy), ok)
		}
		if _, err := p.sim.Complete(simulator.Completion{BizToken: j.BizToken, ErrorCode: new(int64)}); err != nil {
			t.Fatal(err)
		}
		task, err := tasks.NewGetTask(&tasks.GetPayload{JobID: j.JobId, Priority: tasks.PriorityBatch, Trigger: tasks.TriggerNow, CreatedAt: time.Now()}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.EnqueueContext(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	waittest.UntilReason(t, 2*time.Minute, "every result fetched", func() (bool, string) {
		for i, j := range jobs {
			got, err := p.producer.Results().Get(ctx, j.JobId)
			if err != nil || got.Verification == nil || got.Verification.Status != tasks.VerificationPassed {
				return false, fmt.Sprintf("job %d: %+v %v", i, got, err)
			}
		}
		return true, ""
	})
	for i, j := range jobs {
		if f, _ := p.sim.Flow(j.BizToken); f.FetchedBy != f.MintedBy {
			t.Fatalf("job %d: minted by %s, fetched by %s", i, ratelimit.MaskAccount(f.MintedBy), ratelimit.MaskAccount(f.FetchedBy))
		}
	}
}

// TestSharedLimitSlowsEachSet: the two sets each believe they have 20/s, but the
// simulator enforces one 20/s for both (as Tencent would if the limit were per root
// account). The RequestLimitExceeded answers slow each set's limiter down: every job
// still succeeds, with refusals a small part of the calls.
func TestSharedLimitSlowsEachSet(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 200 jobs at a shared 20/s")
	}
	const n = 200
	p := setupPool(t, true)
	p.mint(t, n, 3*time.Minute)
	st := p.sim.Stats()
	refused := st.ByCode["RequestLimitExceeded"]
	if st.MaxAdmittedInAnySecond > 20 || st.ByCode["OK"] != n {
		t.Fatalf("stats %+v", st)
	}
	if refused > n/4 {
		t.Fatalf("%d calls refused for %d jobs: the sets did not slow down", refused, n)
	}
	t.Logf("%d refused of %d requests; per SecretId: %+v", refused, st.Requests, p.applyBudgets())
}
