package faultsuite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/tasks"
)

// TestWorkerKill kills a worker with SIGKILL several times in the middle of a run
// (two workers; each killed worker is replaced at once): every job ends succeeded,
// none is lost, and the upstream duplicates (BizTokens issued minus jobs) are bounded
// by the jobs that were running at the kills. A killed worker's jobs come back through
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
		waitFor(t, 5*time.Minute, fmt.Sprintf("%d BizTokens before kill %d", at, k+1), func() (bool, string) {
			got := s.sim.ok()
			return got >= at, fmt.Sprintf("%d issued", got)
		})
		victim := k % len(workers)
		workers[victim].kill()
		killedAt := time.Now()
		js, err := jobs(ctx, s.rdb, ids)
		if err != nil {
			t.Fatal(err)
		}
		var running []string
		for id, j := range js {
			if j != nil && j.Status == tasks.StatusRunning {
				running = append(running, id)
			}
		}
		bound += len(running)
		t.Logf("kill %d of %s at %d BizTokens: %d jobs running (the duplicates it may cause)",
			k+1, workers[victim].name, s.sim.ok(), len(running))
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
	t.Logf("%d jobs, %d kills: 0 lost (all succeeded) in %v; upstream duplicates %d (bound: %d jobs running at the kills); "+
		"recovery of the killed workers' jobs: %v; simulator %v",
		n, kills, took.Round(time.Second), dups, bound, recoveries, s.sim.Stats().ByCode)
	if dups < 0 || dups > int64(bound) {
		t.Errorf("duplicates = %d, want between 0 and %d (the jobs running at the kills)", dups, bound)
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
