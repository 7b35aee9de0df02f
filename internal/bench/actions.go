package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

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
// workers: the Apply jobs mint BizTokens, and a feeder fetches their results (producer
// Fetch, trigger now) at twice the budget, cycling over the minted jobs, so fetches
// queue up. Fetches start with the measured window, when the warm-up has minted
// tokens ahead. The simulator's per-action counters are reset at its start.
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
	// Feed fetches at 2 × Rate: each tick, the next jobs in order; a job not yet minted
	// sends the feeder back to the first job.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	per := max(1, 2*e.o.Rate/20)
	next, fed, noToken := 0, 0, 0
	for time.Now().Before(to) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		for k := 0; k < per; k++ {
			err := pr.Fetch(ctx, ids[next], tasks.TriggerNow, e.o.GetLane)
			switch {
			case errors.Is(err, results.ErrNoToken):
				next, noToken = 0, noToken+1
				continue
			case err != nil:
				return nil, fmt.Errorf("bench: enqueue fetch: %w", err)
			}
			next, fed = (next+1)%len(ids), fed+1
		}
	}
	fmt.Fprintf(e.o.Log, "  fetches enqueued %d, not yet minted %d\n", fed, noToken)
	st := e.sim.Stats()
	stopWorkers(cmds)
	cmds = nil
	var rows []ActionRow
	for _, a := range []string{faceid.Action, faceid.ActionGet} {
		rows = append(rows, actionRow(n, p.Name, a, st.ByAction[a], e.o))
	}
	return rows, nil
}

func actionRow(n int, prof, action string, s simulator.ActionStats, o Options) ActionRow {
	ps := float64(s.Admitted) / o.Duration.Seconds()
	return ActionRow{Workers: n, Profile: prof, Action: action, Admitted: s.Admitted, PerSecond: ps,
		Util: ps / float64(o.Rate), MaxInAnySecond: s.MaxInAnySecond, RLE: s.ByCode["RequestLimitExceeded"]}
}

func writeActionsTable(out io.Writer, o Options, rows []ActionRow) {
	fmt.Fprintf(out, "\napply+get: upstream limit %d/s per action (strict sliding second, counted on arrival); %v measured after %v warm-up; %d Apply jobs pending, fetches of minted tokens fed at %d/s\n\n",
		o.Rate, o.Duration, o.Warmup, o.Backlog, 2*o.Rate)
	fmt.Fprintln(out, "| action | workers | latency | calls/s | utilization | max in any 1 s | RequestLimitExceeded |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %d | %s | %.2f | %.1f%% | %d | %d |\n", r.Action, r.Workers, r.Profile, r.PerSecond, 100*r.Util, r.MaxInAnySecond, r.RLE)
	}
}
