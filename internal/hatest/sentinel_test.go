package hatest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/hatest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// submitted is one job the producer loop got acknowledged.
type submitted struct {
	key   string // Idempotency-Key
	id    string
	phase int // 0 before the kill, 1 between the kill and the failover, 2 after
}

// TestSentinelFailover runs a producer (40 jobs/s, twice what the upstream drains, so a
// backlog builds; each with an Idempotency-Key,
// retried on error as an HTTP client would) and two workers through a Sentinel URL,
// kills the master with SIGKILL once the pipeline is busy, and checks that the
// pipeline carries on through the promoted replica: every job acknowledged after the
// failover succeeds. It reports what the failover cost: the failover time, the
// producer's unavailability, jobs delayed, duplicated upstream calls and jobs lost
// (and whether re-submitting with the same Idempotency-Key recovers them).
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a Sentinel-managed master mid-run (about 20 s)")
	}
	set := hatest.StartSentinel(t, hatest.SentinelOptions{DataArgs: []string{"--appendonly", "yes", "--appendfsync", "everysec"}})
	b := setup(t, set.URL())
	b.startWorker(t)
	b.startWorker(t)
	old := set.Master()

	var (
		mu        sync.Mutex
		subs      []submitted
		submitErr int
		outage    time.Duration // longest a Submit kept failing
		phase     atomic.Int32
	)
	ackedIn := func(p int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range subs {
			if s.phase == p {
				n++
			}
		}
		return n
	}
	u := "https://example.com/done"
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			key := fmt.Sprintf("failover-%d", n)
			extra := key
			var firstErr time.Time
			for {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				j, _, err := b.producer.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch},
					producer.Options{IdempotencyKey: key})
				cancel()
				if err == nil {
					mu.Lock()
					subs = append(subs, submitted{key: key, id: j.JobId, phase: int(phase.Load())})
					if !firstErr.IsZero() {
						outage = max(outage, time.Since(firstErr))
					}
					mu.Unlock()
					break
				}
				mu.Lock()
				submitErr++
				mu.Unlock()
				if firstErr.IsZero() {
					firstErr = start
				}
				select { // a client's retry pause, not a synchronisation
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-loopDone
	}()

	hatest.WaitFor(t, 30*time.Second, "40 jobs done before the kill", func() bool { return b.sim.Stats().ByCode["OK"] >= 40 })
	phase.Store(1)
	okAtKill := b.sim.Stats().ByCode["OK"]
	killedAt := time.Now()
	old.Kill()
	hatest.WaitFor(t, 30*time.Second, "the sentinels to promote the replica", func() bool {
		a, err := set.MasterAddr(context.Background())
		return err == nil && a != old.Addr()
	})
	failoverTook := time.Since(killedAt)
	phase.Store(2)
	hatest.WaitFor(t, 30*time.Second, "60 jobs acknowledged after the failover", func() bool { return ackedIn(2) >= 60 })
	close(stop)
	<-loopDone

	mu.Lock()
	all := slices.Clone(subs)
	mu.Unlock()
	ids := make([]string, len(all))
	for i, s := range all {
		ids[i] = s.id
	}
	jobs, errs := b.waitFinal(ids, 30*time.Second)

	var (
		succeeded, failed, notFinal, recordLost int
		delays                                  [3][]time.Duration
		pending                                 []int
		finished                                []time.Time
	)
	for i, j := range jobs {
		switch {
		case j == nil:
			notFinal++
			pending = append(pending, i)
			if errors.Is(errs[i], results.ErrNotFound) {
				recordLost++
			}
			t.Logf("job %s (phase %d) not final: %v", all[i].id, all[i].phase, errs[i])
			if all[i].phase == 2 {
				t.Errorf("job %s acknowledged after the failover is not final: %v", all[i].id, errs[i])
			}
		case j.Status == tasks.StatusSucceeded:
			succeeded++
			delays[all[i].phase] = append(delays[all[i].phase], j.FinishedAt.Sub(j.CreatedAt))
			finished = append(finished, *j.FinishedAt)
		default:
			failed++
			t.Errorf("job %s (phase %d) is %s: %+v", j.JobId, all[i].phase, j.Status, j.Error)
		}
	}

	// A client that re-submits with its Idempotency-Key re-enqueues a job that is
	// still queued (its task was lost with the master).
	recovered := 0
	if len(pending) > 0 {
		var again []string
		for _, i := range pending {
			extra := all[i].key
			j, _, err := b.producer.Submit(context.Background(), &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch},
				producer.Options{IdempotencyKey: all[i].key})
			if err != nil {
				t.Logf("re-submit %s: %v", all[i].key, err)
				continue
			}
			again = append(again, j.JobId)
		}
		js, _ := b.waitFinal(again, 15*time.Second)
		for _, j := range js {
			if j != nil && j.Status == tasks.StatusSucceeded {
				recovered++
			}
		}
	}

	// The longest time no job finished: how long the failover stalled the drain.
	var stall time.Duration
	slices.SortFunc(finished, time.Time.Compare)
	for i := 1; i < len(finished); i++ {
		stall = max(stall, finished[i].Sub(finished[i-1]))
	}
	st := b.sim.Stats()
	dups := st.ByCode["OK"] - int64(succeeded+recovered)
	t.Logf("failover: master %s killed after %d upstream successes; sentinels promoted %s after %v",
		old.Addr(), okAtKill, set.Master().Addr(), failoverTook.Round(time.Millisecond))
	t.Logf("producer: %d jobs acknowledged (%d before the kill, %d during the failover, %d after); %d Submit errors, longest unavailability %v",
		len(all), ackedIn(0), ackedIn(1), ackedIn(2), submitErr, outage.Round(time.Millisecond))
	t.Logf("jobs: %d succeeded, %d failed, %d not final after 30 s (%d with no record); %d of those recovered by re-submitting with the same Idempotency-Key",
		succeeded, failed, notFinal, recordLost, recovered)
	t.Logf("drain: the longest time no job finished was %v (at 20/s a job finishes every 50 ms)", stall.Round(time.Millisecond))
	for p, name := range []string{"before the kill", "during the failover", "after"} {
		if len(delays[p]) > 0 {
			slices.Sort(delays[p])
			t.Logf("created→final, jobs acknowledged %s: median %v, max %v", name,
				delays[p][len(delays[p])/2].Round(time.Millisecond), delays[p][len(delays[p])-1].Round(time.Millisecond))
		}
	}
	t.Logf("upstream: %d OK answers for %d succeeded jobs (%d duplicate tokens minted); by code %v; max %d received in any second",
		st.ByCode["OK"], succeeded+recovered, dups, st.ByCode, st.MaxInAnySecond)

	if ackedIn(2) < 60 {
		t.Fatalf("only %d jobs acknowledged after the failover", ackedIn(2))
	}
	if st.MaxAdmittedInAnySecond > 20 {
		t.Errorf("simulator admitted %d in one second", st.MaxAdmittedInAnySecond)
	}
}
