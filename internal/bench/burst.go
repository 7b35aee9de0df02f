package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// BurstOptions shape the burst profile: Jobs interactive jobs arrive evenly over Over
// with MaxWait, run once with that deadline and once without; then ETAJobs are
// submitted at once to measure how honest EstimatedStartAt is.
type BurstOptions struct {
	Jobs    int           // defaults to 3,000
	Over    time.Duration // defaults to 10s
	MaxWait time.Duration // defaults to 30s
	ETAJobs int           // defaults to 5,000
}

func (b BurstOptions) withDefaults() BurstOptions {
	if b.Jobs <= 0 {
		b.Jobs = 3000
	}
	if b.Over <= 0 {
		b.Over = 10 * time.Second
	}
	if b.MaxWait <= 0 {
		b.MaxWait = 30 * time.Second
	}
	if b.ETAJobs <= 0 {
		b.ETAJobs = 5000
	}
	return b
}

// BurstRow is one run of the burst: with or without deadlines.
type BurstRow struct {
	Deadlines bool
	Jobs      int
	InTime    int           // jobs whose call reached the upstream within MaxWait of creation
	Late      int           // calls made for jobs past that (wasted: nobody waits any more)
	Expired   int           // jobs ended expired, without a call
	Span      time.Duration // the window in which a call can be in time: Over + MaxWait
	Goodput   float64       // InTime per second over Span
}

// ETARow is the honesty of EstimatedStartAt over a backlog.
type ETARow struct {
	Jobs                   int
	Measured               int           // jobs estimated to wait more than a second
	ErrP50, ErrP90         time.Duration // |estimated − actual| start
	RelErrP50, RelErrP90   float64       // that error over the actual wait
	MaxWait, MeanEstimated time.Duration
}

// burst runs the burst profile with n faceidq workers.
func (e *runEnv) burst(ctx context.Context, n int, bo BurstOptions) ([]BurstRow, ETARow, error) {
	bo = bo.withDefaults()
	var rows []BurstRow
	for _, deadlines := range []bool{true, false} {
		fmt.Fprintf(e.o.Log, "scenario: burst, %d worker(s), %d jobs in %v, deadlines %v\n", n, bo.Jobs, bo.Over, deadlines)
		r, err := e.burstRun(ctx, n, bo, deadlines)
		if err != nil {
			return nil, ETARow{}, err
		}
		fmt.Fprintf(e.o.Log, "  → in time %d, late %d, expired %d, goodput %.2f/s\n", r.InTime, r.Late, r.Expired, r.Goodput)
		rows = append(rows, r)
	}
	fmt.Fprintf(e.o.Log, "scenario: ETA honesty, %d worker(s), %d-job backlog\n", n, bo.ETAJobs)
	eta, err := e.etaRun(ctx, n, bo.ETAJobs)
	return rows, eta, err
}

func (e *runEnv) burstProducer() (*producer.Producer, error) {
	return producer.New(producer.Config{Redis: e.rdb})
}

// burstStart resets Redis and the simulator (steady latency) and starts n faceidq
// workers and a producer; stop stops them (also after an error; once, however often
// it is called).
func (e *runEnv) burstStart(ctx context.Context, n int) (p *producer.Producer, stop func(), err error) {
	stop = func() {}
	if err := e.setProfile(Profiles["steady"]); err != nil {
		return nil, stop, err
	}
	if err := e.reset(ctx); err != nil {
		return nil, stop, err
	}
	if p, err = e.burstProducer(); err != nil {
		return nil, stop, err
	}
	procs, err := e.startWorkers(ctx, ModeFaceidq, n)
	var once sync.Once
	stop = func() { once.Do(func() { stopWorkers(procs); p.Close() }) }
	return p, stop, err
}

func (e *runEnv) burstRun(ctx context.Context, n int, bo BurstOptions, deadlines bool) (BurstRow, error) {
	row := BurstRow{Deadlines: deadlines, Jobs: bo.Jobs}
	p, stop, err := e.burstStart(ctx, n)
	defer stop()
	if err != nil {
		return row, err
	}
	u := "https://example.com/bench"
	maxWait := 0
	if deadlines {
		maxWait = int(bo.MaxWait / time.Second)
	}
	ids := make([]string, bo.Jobs)
	created := make([]time.Time, bo.Jobs)
	start := time.Now()
	for i := range bo.Jobs {
		if d := time.Until(start.Add(time.Duration(i) * bo.Over / time.Duration(bo.Jobs))); d > 0 {
			time.Sleep(d)
		}
		extra := "bench:k:" + strconv.Itoa(i)
		j, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, MaxWait: maxWait}, producer.Options{})
		if err != nil {
			return row, fmt.Errorf("bench: burst submit: %w", err)
		}
		ids[i], created[i] = j.JobId, j.CreatedAt
	}
	// Every job has had its chance once the last one's MaxWait is over (and a few
	// seconds for the expiries): without deadlines the rest of the backlog is late work.
	end := start.Add(bo.Over + bo.MaxWait + 5*time.Second)
	select {
	case <-time.After(time.Until(end)):
	case <-ctx.Done():
		return row, ctx.Err()
	}
	stop() // the workers; what they did is counted below
	for i, id := range ids {
		at, called := e.probe.firstArrival("bench:k:" + strconv.Itoa(i))
		switch {
		case called && !at.After(created[i].Add(bo.MaxWait)):
			row.InTime++
		case called:
			row.Late++
		}
		if deadlines {
			if st, err := p.Results().Status(ctx, id); err == nil && st == tasks.StatusExpired {
				row.Expired++
			}
		}
	}
	row.Span = bo.Over + bo.MaxWait
	row.Goodput = float64(row.InTime) / row.Span.Seconds()
	return row, nil
}

// etaRun submits jobs back to back to running workers, keeps the EstimatedStartAt
// each submit's answer would carry, and compares it with the job's first arrival at
// the upstream.
func (e *runEnv) etaRun(ctx context.Context, n, jobs int) (ETARow, error) {
	row := ETARow{Jobs: jobs}
	p, stop, err := e.burstStart(ctx, n)
	defer stop()
	if err != nil {
		return row, err
	}
	u := "https://example.com/bench"
	type est struct {
		extra     string
		submitted time.Time
		startAt   time.Time
	}
	ests := make([]est, jobs)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 { // submit as fast as a few clients can
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < jobs; i += 8 {
				extra := "bench:k:" + strconv.Itoa(i)
				j, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra}, producer.Options{})
				if err == nil {
					err = p.Backlog().Fill(ctx, j)
				}
				if err != nil {
					errs <- err
					return
				}
				if j.EstimatedStartAt != nil {
					ests[i] = est{extra: extra, submitted: time.Now(), startAt: *j.EstimatedStartAt}
				}
			}
		}(w)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return row, fmt.Errorf("bench: eta submit: %w", err)
	default:
	}
	// Wait for the last arrival (at the rate, plus room).
	deadline := time.Now().Add(time.Duration(float64(jobs)/float64(e.o.Rate)*float64(time.Second)) + time.Minute)
	for time.Now().Before(deadline) {
		if _, ok := e.probe.firstArrival("bench:k:" + strconv.Itoa(jobs-1)); ok {
			break
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return row, ctx.Err()
		}
	}
	var abs []time.Duration
	var rel []float64
	var sumEst time.Duration
	for _, x := range ests {
		if x.extra == "" {
			continue
		}
		at, ok := e.probe.firstArrival(x.extra)
		wait := x.startAt.Sub(x.submitted)
		if !ok || wait <= time.Second { // "after the first second"
			continue
		}
		actual := at.Sub(x.submitted)
		d := x.startAt.Sub(at)
		if d < 0 {
			d = -d
		}
		abs = append(abs, d)
		rel = append(rel, float64(d)/float64(max(actual, time.Millisecond)))
		sumEst += wait
		row.MaxWait = max(row.MaxWait, actual)
	}
	row.Measured = len(abs)
	if len(abs) == 0 {
		return row, nil
	}
	sort.Slice(abs, func(i, j int) bool { return abs[i] < abs[j] })
	sort.Float64s(rel)
	row.ErrP50, row.ErrP90 = quantile(abs, 0.5), quantile(abs, 0.9)
	row.RelErrP50, row.RelErrP90 = rel[len(rel)/2], rel[min(len(rel)-1, len(rel)*9/10)]
	row.MeanEstimated = sumEst / time.Duration(len(abs))
	return row, nil
}

// writeBurstTable writes the burst profile's results.
func writeBurstTable(out io.Writer, bo BurstOptions, n int, rows []BurstRow, eta ETARow) {
	bo = bo.withDefaults()
	fmt.Fprintf(out, "\nBurst: %d interactive jobs in %v, MaxWait %v, %d worker(s), upstream %s. In time: the call reached the upstream (arrival, after the 15 ms inbound half of the latency) within MaxWait of the job's creation; late: a call made after (wasted); goodput: in-time calls per second over the window where one is possible (arrival + MaxWait).\n\n",
		bo.Jobs, bo.Over, bo.MaxWait, n, Profiles["steady"].Name)
	fmt.Fprintln(out, "| deadlines | in time | late (wasted calls) | expired | span | goodput |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Fprintf(out, "| %v | %d | %d | %d | %v | %.2f/s |\n", r.Deadlines, r.InTime, r.Late, r.Expired, r.Span.Round(time.Millisecond), r.Goodput)
	}
	fmt.Fprintf(out, "\nETA honesty: %d jobs submitted at once; |EstimatedStartAt − first upstream arrival| over the %d jobs estimated to wait more than 1 s (mean estimate %v, longest wait %v): median %v (%.1f%% of the wait), p90 %v (%.1f%%). Target: ≤ 10%% of the wait.\n",
		eta.Jobs, eta.Measured, eta.MeanEstimated.Round(time.Millisecond), eta.MaxWait.Round(time.Millisecond),
		eta.ErrP50.Round(time.Millisecond), 100*eta.RelErrP50, eta.ErrP90.Round(time.Millisecond), 100*eta.RelErrP90)
}
