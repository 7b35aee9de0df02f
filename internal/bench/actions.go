package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// ActionRow is one upstream action measured in the apply+get scenario.
type ActionRow struct {
	Workers        int
	Profile        string
	Action         string
	Admitted       int64
	PerSecond      float64
	Util           float64
	MaxInAnySecond int
	RLE            int64
}

// actionsScenario keeps an Apply backlog and a Get backlog pending together on faceidq
// workers: the Apply jobs mint BizTokens, and a getFeeder keeps the Get queue of the
// lane at least getTarget tasks deep with fetches (producer Fetch, trigger now) of
// minted jobs, so that what is measured is the limiter, not the feeder. Fetches start
// with the measured window, when the warm-up has minted tokens ahead. The simulator's
// per-action counters are reset at its start.
func (e *runEnv) actionsScenario(ctx context.Context, n int, p Profile) ([]ActionRow, error) {
	if err := e.setProfile(p); err != nil {
		return nil, err
	}
	if err := e.reset(ctx); err != nil {
		return nil, err
	}
	pr, err := producer.New(producer.Config{Redis: e.rdb, CheckCallbackURL: func(context.Context, string) error { return nil }})
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	ids := make([]string, 0, e.o.Backlog)
	u := "https://example.com/bench"
	for i := 0; i < e.o.Backlog; i++ {
		extra := "bench:b:" + strconv.Itoa(i)
		j, _, err := pr.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch}, producer.Options{})
		if err != nil {
			return nil, fmt.Errorf("bench: enqueue backlog: %w", err)
		}
		ids = append(ids, j.JobId)
	}
	cmds, err := e.startWorkers(ctx, ModeFaceidq, n)
	defer stopWorkers(cmds)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	from, to := start.Add(e.o.Warmup), start.Add(e.o.Warmup+e.o.Duration)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Until(from)):
	}
	e.sim.ResetStats()
	f := newGetFeeder(pr, ids, e.o.GetLane)
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	queue, target := tasks.Queue(tasks.TypeGetResult, e.o.GetLane), getTarget(e.o.Rate)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	minPending, minReady, empty, ticks := -1, -1, 0, 0
	for time.Now().Before(to) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		pending, active := 0, 0
		qi, err := insp.GetQueueInfo(queue)
		switch {
		case err == nil:
			pending, active = qi.Pending, qi.Active
		case !strings.Contains(err.Error(), "does not exist"): // no fetch enqueued yet
			return nil, fmt.Errorf("bench: read the Get queue: %w", err)
		}
		if ticks++; ticks > 10 { // the first second fills the queue
			if minPending < 0 || pending < minPending {
				minPending = pending
			}
			if minReady < 0 || pending+active < minReady {
				minReady = pending + active
			}
			if pending == 0 {
				empty++
			}
		}
		if err := f.feed(ctx, time.Now(), target-pending); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(e.o.Log, "  %s: %d jobs fetched (each then refetched on the worker's backoff), %d tries before the mint; after the first second: pending at least %d, pending+running at least %d, empty at %d of %d checks\n",
		queue, f.fetches, f.unminted, minPending, minReady, empty, ticks-min(ticks, 10))
	st := e.sim.Stats()
	stopWorkers(cmds)
	cmds = nil
	var rows []ActionRow
	for _, a := range []string{faceid.Action, faceid.ActionGet} {
		rows = append(rows, actionRow(n, p.Name, a, st.ByAction[a], e.o))
	}
	return rows, nil
}

// getTarget is how many Get tasks the feeder keeps pending: two seconds of the budget.
func getTarget(rate int) int { return 2 * rate }

// getFeeder enqueues fetches (trigger now) of minted jobs, each job once: the
// simulator's flows are never completed, so a job's verification stays pending and
// the worker fetches it again on its own backoff; its fetch task never leaves the
// queue's retry set within a run. Jobs are minted roughly in order, but a job the
// Apply limiter deferred goes to the back of the backlog, so the feeder skips a job
// found unminted for a while instead of stopping there.
type getFeeder struct {
	pr        *producer.Producer
	ids       []string
	lane      tasks.Priority
	fed       []bool
	notBefore []time.Time // a job found unminted is not tried again before this
	fetches   int         // jobs fetched
	unminted  int         // tries of jobs not yet minted
}

// getRetryUnminted is how long a job found unminted is skipped; maxMisses unminted
// jobs in a row mean the feeder passed the minting frontier.
const (
	getRetryUnminted = 500 * time.Millisecond
	maxMisses        = 8
)

func newGetFeeder(pr *producer.Producer, ids []string, lane tasks.Priority) *getFeeder {
	return &getFeeder{pr: pr, ids: ids, lane: lane, fed: make([]bool, len(ids)), notBefore: make([]time.Time, len(ids))}
}

// feed enqueues up to n fetches of minted jobs not fetched yet, the oldest first.
func (f *getFeeder) feed(ctx context.Context, now time.Time, n int) error {
	misses := 0
	for i := 0; i < len(f.ids) && n > 0 && misses < maxMisses; i++ {
		if f.fed[i] || now.Before(f.notBefore[i]) {
			continue
		}
		err := f.pr.Fetch(ctx, f.ids[i], tasks.TriggerNow, f.lane)
		switch {
		case errors.Is(err, results.ErrNoToken):
			f.notBefore[i] = now.Add(getRetryUnminted)
			f.unminted++
			misses++
			continue
		case err != nil:
			return fmt.Errorf("bench: enqueue fetch: %w", err)
		}
		f.fed[i], misses = true, 0
		f.fetches++
		n--
	}
	return nil
}

func actionRow(n int, prof, action string, s simulator.ActionStats, o Options) ActionRow {
	ps := float64(s.Admitted) / o.Duration.Seconds()
	return ActionRow{Workers: n, Profile: prof, Action: action, Admitted: s.Admitted, PerSecond: ps,
		Util: ps / float64(o.Rate), MaxInAnySecond: s.MaxInAnySecond, RLE: s.ByCode["RequestLimitExceeded"]}
}

func writeActionsTable(out io.Writer, o Options, rows []ActionRow) {
	fmt.Fprintf(out, "\napply+get: upstream limit %d/s per action (strict sliding second, counted on arrival); %v measured after %v warm-up; %d Apply jobs pending, fetches of minted tokens kept at least %d pending on the %s lane\n\n",
		o.Rate, o.Duration, o.Warmup, o.Backlog, getTarget(o.Rate), o.GetLane)
	fmt.Fprintln(out, "| action | workers | latency | calls/s | utilization | max in any 1 s | RequestLimitExceeded |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %d | %s | %.2f | %.1f%% | %d | %d |\n", r.Action, r.Workers, r.Profile, r.PerSecond, 100*r.Util, r.MaxInAnySecond, r.RLE)
	}
}
