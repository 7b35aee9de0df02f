package faultsuite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// TestWorkerKill kills a worker with SIGKILL several times in the middle of a run
// (two workers; each killed worker is replaced at once): every job ends succeeded,
// none is lost, and the upstream duplicates (BizTokens issued minus jobs) are bounded
// by what a kill can interrupt: the jobs running, the final jobs whose task was not
// yet acknowledged, and the upstream calls in flight at the kills. A killed worker's jobs come back through
// the worker's fast crash recovery (asynq lease 30 s + 3 s, worker/recover.go).
func TestWorkerKill(t *testing.T) {
	t.Parallel()
	n, kills := pick(200, 1000), pick(1, 3)
	s := newStack(t, stackOptions{sim: simulator.Config{Faults: simulator.Faults{
		Latency: 200 * time.Millisecond, Jitter: 100 * time.Millisecond}}})
	api := s.api(t, "api", nil)
	workers := []*node{s.worker(t, "worker-a", nil), s.worker(t, "worker-b", nil)}

	ids := mustSubmit(t, api.url, "", n)
	start := time.Now()

	var (
		bound      int
		recoveries = make([]time.Duration, kills)
		wg         sync.WaitGroup
	)
	ctx := context.Background()
	for k := range kills {
		// Kill at evenly spaced points of the run.
		at := int64(n * (k + 1) / (kills + 1))
		waittest.UntilReason(t, 5*time.Minute, fmt.Sprintf("%d BizTokens before kill %d", at, k+1), func() (bool, string) {
			got := s.sim.ok()
			return got >= at, fmt.Sprintf("%d issued", got)
		})
		victim := k % len(workers)
		inFlightBefore := s.sim.Stats().InFlight
		workers[victim].Kill()
		killedAt := time.Now()
		inFlightAfter := s.sim.Stats().InFlight
		leased, err := activeTasks(ctx, s.rdb)
		if err != nil {
			t.Fatal(err)
		}
		js, err := jobs(ctx, s.rdb, ids)
		if err != nil {
			t.Fatal(err)
		}
		// The jobs a kill may duplicate (an upstream call whose answer was not
		// recorded, or a recorded answer whose task was not acknowledged):
		//   - the jobs marked running;
		//   - the final jobs whose task was still leased (answer recorded, task not
		//     acknowledged: the re-run calls again, and learns it is final after);
		//   - the calls in flight at the simulator around the kill, whose job may not
		//     be marked running yet (the worker marks it alongside the call). A call
		//     started after the first read and ended before the second would have
		//     taken less than the simulator's minimum latency (100 ms), so the two
		//     reads cover every call in flight at the kill.
		var running []string
		suspects := 0
		for id, j := range js {
			switch {
			case j == nil:
			case j.Status == tasks.StatusRunning:
				running = append(running, id)
				suspects++
			case j.Status.Final() && leased[id]:
				suspects++
			}
		}
		b := suspects + int(inFlightBefore+inFlightAfter)
		bound += b
		t.Logf("kill %d of %s at %d BizTokens: %d jobs running, %d final but leased, %d+%d calls in flight (bound %d)",
			k+1, workers[victim].Name, s.sim.ok(), len(running), suspects-len(running), inFlightBefore, inFlightAfter, b)
		workers[victim] = s.worker(t, fmt.Sprintf("worker-%d", k+3), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(3 * time.Minute)
			for time.Now().Before(deadline) {
				js, err := jobs(ctx, s.rdb, running)
				if err == nil {
					c := census(js)
					if c[string(tasks.StatusSucceeded)]+c[string(tasks.StatusFailed)] == len(running) {
						recoveries[k] = time.Since(killedAt)
						return
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			recoveries[k] = -1
		}()
	}

	timeout := time.Duration(n/20)*time.Second + time.Duration(kills)*45*time.Second + time.Minute
	js := waitFinal(t, s.rdb, ids, timeout)
	took := time.Since(start)
	wg.Wait()
	requireSucceeded(t, js)

	dups := s.sim.ok() - int64(n)
	t.Logf("%d jobs, %d kills: 0 lost (all succeeded) in %v; upstream duplicates %d (bound: %d, the jobs running or leased and the calls in flight at the kills); "+
		"recovery of the killed workers' jobs: %v; simulator %v",
		n, kills, took.Round(time.Second), dups, bound, recoveries, s.sim.Stats().ByCode)
	if dups < 0 || dups > int64(bound) {
		t.Errorf("duplicates = %d, want between 0 and %d (the jobs running or leased and the calls in flight at the kills)", dups, bound)
	}
	for k, d := range recoveries {
		if d < 0 {
			t.Errorf("kill %d: the jobs running at the kill were not final within 3 minutes", k+1)
		}
	}
	for _, j := range js {
		if j != nil && (j.BizToken == "" || j.Error != nil) {
			t.Errorf("job %s succeeded without a BizToken or with an error: %+v", j.JobId, j)
			break
		}
	}
}

// activeTasks returns the IDs of the token tasks asynq holds as active (leased by a
// worker): a job's task ID is its JobId (tasks.NewApplyTask).
func activeTasks(ctx context.Context, rdb redis.UniversalClient) (map[string]bool, error) {
	ids := map[string]bool{}
	for _, q := range tasks.TokenQueues {
		l, err := rdb.LRange(ctx, "asynq:{"+q+"}:active", 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("active tasks of %s: %w", q, err)
		}
		for _, id := range l {
			ids[id] = true
		}
	}
	return ids, nil
}
