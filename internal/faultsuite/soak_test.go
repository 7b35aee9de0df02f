package faultsuite

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// load posts jobBody to an api at rate per second from conns connections until ctx
// ends, and collects the JobIds of 2xx answers.
type load struct {
	mu       sync.Mutex
	ids      []string
	refused  map[int]int // HTTP status → count of non-2xx answers
	errs     atomic.Int64
	firstErr atomic.Value
	wait     func() // waits until the load has stopped
}

func runLoad(ctx context.Context, base string, rate, conns int) *load {
	l := &load{refused: map[int]int{}}
	tokens := make(chan struct{}, rate)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // 100 releases a second
		defer wg.Done()
		defer close(tokens)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var owed float64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for owed += float64(rate) / 100; owed >= 1; owed-- {
				select {
				case tokens <- struct{}{}:
				default: // the senders are behind: the token is dropped
				}
			}
		}
	}()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tokens {
				id, a, err := submit(context.Background(), base, "", jobBody)
				l.mu.Lock()
				switch {
				case err != nil:
					l.errs.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
				case id != "":
					l.ids = append(l.ids, id)
				default:
					l.refused[a.status]++
				}
				l.mu.Unlock()
			}
		}()
	}
	l.wait = wg.Wait
	return l
}

// redisMemory returns Redis's used_memory (INFO memory).
func redisMemory(t testing.TB, s *stack) float64 {
	t.Helper()
	info, err := s.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// TestSoak posts jobs to `faceidq api` far faster than the upstream's 20/s for a
// while: the memory and goroutines of the api and the worker stay flat after the
// warm-up, Redis's memory stays bounded by the jobs pending, and every accepted job
// is accounted for: final, or queued in asynq. The default is 20 s at 200 POST/s;
// FACEIDQ_SOAK=10m runs 2,000 POST/s for 10 minutes (FACEIDQ_SOAK_RATE changes the
// rate; FACEIDQ_SOAK_DRAIN=1 then also waits, at 20/s, until every job is final).
func TestSoak(t *testing.T) {
	t.Parallel()
	dur, rate, conns := 20*time.Second, 200, 16
	if v := os.Getenv("FACEIDQ_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FACEIDQ_SOAK=%q: %v", v, err)
		}
		dur, rate, conns = d, 2000, 128
	}
	if v := os.Getenv("FACEIDQ_SOAK_RATE"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r <= 0 {
			t.Fatalf("FACEIDQ_SOAK_RATE=%q: not a positive whole number", v)
		}
		rate = r
	}
	s := newStack(t, stackOptions{})
	api := s.api(t, "api", nil)
	w := s.worker(t, "worker", nil)
	redisBase := redisMemory(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	l := runLoad(ctx, api.url, rate, conns)
	warm := dur / 4
	select {
	case <-time.After(warm): // the warm-up is a length of time, not an event
	case <-ctx.Done():
	}
	apiWarm, workerWarm := scrape(t, api.url, ""), scrape(t, w.url, "")
	apiMax, workerMax := apiWarm, workerWarm
	tick := time.NewTicker(time.Second)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			a, wk := scrape(t, api.url, ""), scrape(t, w.url, "")
			apiMax.rss, apiMax.goroutines = max(apiMax.rss, a.rss), max(apiMax.goroutines, a.goroutines)
			workerMax.rss, workerMax.goroutines = max(workerMax.rss, wk.rss), max(workerMax.goroutines, wk.goroutines)
		}
	}
	tick.Stop()
	l.wait()
	apiEnd, workerEnd := scrape(t, api.url, ""), scrape(t, w.url, "")
	redisEnd := redisMemory(t, s)
	ids := l.ids

	// Stop the worker so that the counts hold still, then account for every job.
	if code := term(t, w.Proc, 30*time.Second); code != 0 {
		t.Errorf("worker exited %d after SIGTERM", code)
	}
	js, err := jobs(context.Background(), s.rdb, ids)
	if err != nil {
		t.Fatal(err)
	}
	c := census(js)
	final := c[string(tasks.StatusSucceeded)] + c[string(tasks.StatusFailed)] + c[string(tasks.StatusCanceled)]
	inQueue, err := queued(context.Background(), s.rdb)
	if err != nil {
		t.Fatal(err)
	}
	results, err := countKeys(context.Background(), s.rdb, "faceidq:result:*")
	if err != nil {
		t.Fatal(err)
	}
	pending := len(ids) - final
	// What the final jobs' records hold is not a pending job's: it is left out.
	finalBytes, err := finalRecordBytes(context.Background(), s, js)
	if err != nil {
		t.Fatal(err)
	}
	perJob := (redisEnd - redisBase - finalBytes) / float64(max(pending, 1))
	t.Logf("soak %v at %d POST/s (%d connections): %d accepted (%.0f/s), refused %v, transport errors %d %v; "+
		"jobs %v, %d asynq tasks queued, %d result keys",
		dur, rate, conns, len(ids), float64(len(ids))/dur.Seconds(), l.refused, l.errs.Load(), l.firstErr.Load(),
		c, inQueue, results)
	t.Logf("api: RSS %s after warm-up, %s max, %s at the end; goroutines %.0f, %.0f, %.0f",
		mib(apiWarm.rss), mib(apiMax.rss), mib(apiEnd.rss), apiWarm.goroutines, apiMax.goroutines, apiEnd.goroutines)
	t.Logf("worker: RSS %s after warm-up, %s max, %s at the end; goroutines %.0f, %.0f, %.0f",
		mib(workerWarm.rss), mib(workerMax.rss), mib(workerEnd.rss), workerWarm.goroutines, workerMax.goroutines, workerEnd.goroutines)
	t.Logf("Redis used_memory %s before, %s at the end: %.0f bytes per pending job (%d pending; the records of the %d final jobs, %s, left out)",
		mib(redisBase), mib(redisEnd), perJob, pending, final, mib(finalBytes))

	if c["missing"] > 0 || results != len(ids) {
		t.Errorf("%d accepted jobs have no record (%d result keys for %d accepted jobs)", c["missing"], results, len(ids))
	}
	if int(inQueue) != pending {
		t.Errorf("%d jobs are not final but asynq holds %d tasks", pending, inQueue)
	}
	if len(l.refused) > 0 || l.errs.Load() > 0 {
		t.Errorf("POSTs failed under load: %v, %d transport errors (%v)", l.refused, l.errs.Load(), l.firstErr.Load())
	}
	for name, p := range map[string][2]procStats{"api": {apiWarm, apiEnd}, "worker": {workerWarm, workerEnd}} {
		if p[1].goroutines > p[0].goroutines+20 {
			t.Errorf("%s goroutines grew from %.0f after warm-up to %.0f", name, p[0].goroutines, p[1].goroutines)
		}
		if p[1].rss > 2*p[0].rss+32<<20 {
			t.Errorf("%s RSS grew from %s after warm-up to %s", name, mib(p[0].rss), mib(p[1].rss))
		}
	}
	// About 850 bytes over many jobs (docs/benchmarks.md, "Redis memory per job"); a
	// short soak adds the connections' buffers to a few thousand jobs.
	if perJob > 1500 {
		t.Errorf("Redis holds %.0f bytes per pending job: more than a job's record and task should take", perJob)
	}
	if os.Getenv("FACEIDQ_SOAK_DRAIN") == "1" {
		s.worker(t, "worker-drain", nil)
		start := time.Now()
		js = waitFinal(t, s.rdb, ids, time.Duration(pending/15)*time.Second+5*time.Minute)
		requireSucceeded(t, js)
		t.Logf("backlog of %d drained in %v", pending, time.Since(start).Round(time.Second))
	}
}

// finalRecordBytes sums MEMORY USAGE of the records of the final jobs of js.
func finalRecordBytes(ctx context.Context, s *stack, js map[string]*tasks.Job) (float64, error) {
	pipe := s.rdb.Pipeline()
	var cmds []*redis.IntCmd
	for id, j := range js {
		if j != nil && j.Status.Final() {
			cmds = append(cmds, pipe.MemoryUsage(ctx, keys.Result(id)))
		}
	}
	if len(cmds) == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	var n float64
	for _, c := range cmds {
		n += float64(c.Val())
	}
	return n, nil
}
