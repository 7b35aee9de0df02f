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
	"github.com/faceidq/faceidq/internal/waittest"
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
// backlog builds; each job with an Idempotency-Key and retried on error as an HTTP
// client would) and two workers through a Sentinel URL, kills the master with SIGKILL
// once the pipeline is busy, and checks that the pipeline carries on through the
// promoted replica: every job acknowledged after the failover succeeds, and with the
// replica in sync at the kill (loopback replication) nothing is lost; tokens minted
// twice are bounded by the calls in flight at the kill (an answer that arrived while
// the master was gone cannot be recorded, so its job runs again). It
// reports what the failover cost: the failover time, the producer's unavailability,
// the drain's stall, jobs delayed, duplicated upstream calls and jobs lost.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a Sentinel-managed master mid-run (about 20 s)")
	}
	r := runFailover(t, failoverOptions{})
	// Two workers of concurrency 8: at most 16 calls can be in flight at the kill.
	if r.lost != 0 || r.dups > 16 {
		t.Errorf("with the replica in sync, %d acknowledged jobs were lost and %d tokens minted twice (at most 16 in flight)", r.lost, r.dups)
	}
}

// TestSentinelFailoverWithLag is TestSentinelFailover with the replication stream held
// back (hatest.Link) for the last second before the kill, as with a replica far
// behind on a slow link: Redis replication is asynchronous, so what the master
// acknowledged in that second is gone after the failover. It measures the cost (jobs lost, tokens minted
// twice) and checks that the pipeline still carries on.
func TestSentinelFailoverWithLag(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a lagging Sentinel-managed master mid-run (about 60 s)")
	}
	r := runFailover(t, failoverOptions{lag: time.Second})
	if r.recovered != r.lost {
		t.Errorf("%d acknowledged jobs were lost, and only %d re-submissions with their Idempotency-Key succeeded", r.lost, r.recovered)
	}
	// A token is minted twice only for a job that finished on the old master in the
	// lag (its final state is lost, its task comes back) or was in flight at the kill.
	if limit := r.okInLag + 16; r.dups > limit {
		t.Errorf("%d tokens minted twice; at most %d expected (%d calls in the lag + 16 in flight)", r.dups, limit, r.okInLag)
	}
}

// TestSentinelFailoverWithLagAcked is TestSentinelFailoverWithLag with the producer
// waiting for one replica to confirm each job (producer.Config.AckReplicas, the
// FACEIDQ_ACK_REPLICAS of the API), two replicas both held back: a job is
// acknowledged only once a replica has it, so no acknowledged job is lost (Submits
// during the lag fail with a ReplicationError, and the client retries).
func TestSentinelFailoverWithLagAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a lagging Sentinel-managed master mid-run (about 60 s)")
	}
	r := runFailover(t, failoverOptions{lag: time.Second, ackReplicas: 1})
	if r.lost != 0 {
		t.Errorf("%d acknowledged jobs were lost with AckReplicas 1; want none", r.lost)
	}
	if r.notReplicated == 0 {
		t.Error("no Submit waited in vain for a replica while replication was held: the test did not exercise AckReplicas")
	}
}

// failoverOptions configure runFailover.
type failoverOptions struct {
	// lag > 0 freezes the replication for that long just before the kill.
	lag time.Duration
	// ackReplicas is the producer's AckReplicas; with it the set has two replicas.
	ackReplicas int
}

// failoverReport is what a failover cost.
type failoverReport struct {
	lost      int   // acknowledged jobs not final at the end (record or task gone)
	recovered int   // lost jobs that succeeded when re-submitted with their Idempotency-Key
	dups      int64 // upstream successes beyond one per succeeded job
	okInLag   int64 // upstream successes while the replication was held
	// notReplicated is the number of Submits that failed with a ReplicationError.
	notReplicated int
}

// runFailover runs the failover scenario.
func runFailover(t *testing.T, o failoverOptions) failoverReport {
	t.Helper()
	lag := o.lag
	replicas := 1
	if o.ackReplicas > 0 {
		replicas = 2 // one left to confirm writes once the other is promoted
	}
	set := hatest.StartSentinel(t, hatest.SentinelOptions{DataArgs: []string{"--appendonly", "yes", "--appendfsync", "everysec"},
		Links: lag > 0, Replicas: replicas})
	b := setup(t, set.URL())
	b.startWorker(t)
	b.startWorker(t)
	old := set.Master()
	prod := b.producer
	if o.ackReplicas > 0 {
		var err error
		if prod, err = producer.New(producer.Config{Redis: b.rdb, AckReplicas: o.ackReplicas}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(prod.Close)
	}
	var notReplicated atomic.Int32

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
				j, _, err := prod.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch},
					producer.Options{IdempotencyKey: key})
				cancel()
				if errors.Is(err, producer.ErrNotReplicated) {
					notReplicated.Add(1)
				}
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

	waittest.Until(t, 30*time.Second, "40 jobs done before the kill", func() bool { return b.sim.Stats().ByCode["OK"] >= 40 })
	var before int64
	if lag > 0 {
		// Hold the replication stream: the master keeps acknowledging writes that the
		// replica does not receive.
		for _, l := range set.Links {
			l.Hold()
		}
		before = b.sim.Stats().ByCode["OK"]
		waittest.Until(t, 10*time.Second, "jobs to finish while the replica lags", func() bool {
			return b.sim.Stats().ByCode["OK"] >= before+int64(lag.Seconds()*20*0.8)
		})
	}
	phase.Store(1)
	okAtKill := b.sim.Stats().ByCode["OK"]
	killedAt := time.Now()
	old.Kill()
	if lag > 0 {
		for _, l := range set.Links {
			l.Cut() // what the master sent in the lag never arrives
		}
	}
	waittest.Until(t, 30*time.Second, "the sentinels to promote the replica", func() bool {
		a, err := set.MasterAddr(context.Background())
		return err == nil && a != old.Addr()
	})
	failoverTook := time.Since(killedAt)
	phase.Store(2)
	waittest.Until(t, 30*time.Second, "60 jobs acknowledged after the failover", func() bool { return ackedIn(2) >= 60 })
	close(stop)
	<-loopDone

	mu.Lock()
	all := slices.Clone(subs)
	mu.Unlock()
	ids := make([]string, len(all))
	for i, s := range all {
		ids[i] = s.id
	}
	// Jobs whose final state was lost are still "running" on the promoted replica, their
	// tasks active under a lease nobody extends, and so are the tasks whose handler
	// failed on Redis during the failover (asynq could not write their retry): the
	// workers take them back 30 s (the lease) + 3 s (RecoverSkew) + up to 2 s (the scan)
	// after their last heartbeat (worker/recover.go). The wait covers that with room;
	// a job still not final after it is lost.
	wait := 40*time.Second + 2*lag*30
	jobs, errs := b.waitFinal(ids, wait)

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
			j, _, err := prod.Submit(context.Background(), &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch},
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

	// How long the drain stopped: from the kill to the first job finished after it.
	var stall time.Duration
	for _, f := range finished {
		if f.After(killedAt) && (stall == 0 || f.Sub(killedAt) < stall) {
			stall = f.Sub(killedAt)
		}
	}
	st := b.sim.Stats()
	dups := st.ByCode["OK"] - int64(succeeded+recovered)
	if lag > 0 {
		t.Logf("lag: replication held while the workers finished %d jobs on the master alone", okAtKill-before)
	}
	t.Logf("failover: master %s killed after %d upstream successes; sentinels promoted %s after %v",
		old.Addr(), okAtKill, set.Master().Addr(), failoverTook.Round(time.Millisecond))
	t.Logf("producer: %d jobs acknowledged (%d before the kill, %d during the failover, %d after); %d Submit errors, longest unavailability %v",
		len(all), ackedIn(0), ackedIn(1), ackedIn(2), submitErr, outage.Round(time.Millisecond))
	t.Logf("jobs: %d succeeded, %d failed, %d not final after %v (%d with no record); %d of those succeeded when re-submitted with the same Idempotency-Key",
		succeeded, failed, notFinal, wait, recordLost, recovered)
	t.Logf("drain: the first job after the kill finished %v after it", stall.Round(time.Millisecond))
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
	r := failoverReport{lost: notFinal, recovered: recovered, dups: dups, notReplicated: int(notReplicated.Load())}
	t.Logf("producer: AckReplicas %d; %d Submits not confirmed by replicas", o.ackReplicas, r.notReplicated)
	if lag > 0 {
		r.okInLag = okAtKill - before
	}
	return r
}
