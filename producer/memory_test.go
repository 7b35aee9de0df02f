package producer_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// memoryBody is the ~100-byte POST /v1/tokens body of the memory measurement.
func memoryBody(i int) *tasks.TokenRequest {
	redirect := "https://example.com/return?x=1"
	extra := fmt.Sprintf("campaign-42/user-%06d", i)
	return &tasks.TokenRequest{RedirectURL: &redirect, Extra: &extra}
}

// submitForMemory submits n jobs as POST /v1/tokens does (no worker runs), 16 at a
// time, into a fresh redis-server and returns the used_memory delta per job. The
// delta is taken after warm jobs (at least one, which loads the scripts and asynq's
// queue set); with more, the 16 connections and their buffers are there before it.
func submitForMemory(t *testing.T, warm, n int, idempotent bool) (perJob float64, rdb *redis.Client, last *tasks.Job) {
	t.Helper()
	rdb = redistest.Start(t, redistest.Options{}).Client(t)
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx := context.Background()
	if _, _, err := p.Submit(ctx, memoryBody(-1<<20), producer.Options{}); err != nil {
		t.Fatal(err)
	}
	submitAll(t, p, -warm, -1, idempotent)
	base := usedMemory(t, rdb)
	last = submitAll(t, p, 0, n, idempotent)
	return float64(usedMemory(t, rdb)-base) / float64(n), rdb, last
}

// submitAll submits the jobs from (included) to to (excluded), 16 at a time.
func submitAll(t *testing.T, p *producer.Producer, from, to int, idempotent bool) (last *tasks.Job) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	jobs := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				var opts producer.Options
				if idempotent {
					opts.IdempotencyKey = fmt.Sprintf("signup-%08d", i)
				}
				j, _, err := p.Submit(ctx, memoryBody(i), opts)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				last = j
				mu.Unlock()
			}
		}()
	}
	for i := from; i < to; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return last
}

// TestRedisMemoryPerPendingJob keeps the Redis memory of a pending job (record,
// asynq task, queue entry) under its budget.
func TestRedisMemoryPerPendingJob(t *testing.T) {
	redistest.Binary(t, "redis-server")
	perJob, _, _ := submitForMemory(t, 500, 5000, false)
	t.Logf("%.0f bytes per pending job", perJob)
	if perJob > 900 {
		t.Errorf("Redis holds %.0f bytes per pending job; the budget is 900", perJob)
	}
}

// TestMeasureRedisMemoryPerJob submits FACEIDQ_MEASURE_N (default 20,000) jobs with
// a ~100-byte body, as POST /v1/tokens does, to a fresh redis-server with no worker,
// and reports Redis's used_memory delta per job, and what each key of a job takes.
// Run with:
//
//	FACEIDQ_MEASURE=1 go test -run TestMeasureRedisMemoryPerJob -v ./producer/
func TestMeasureRedisMemoryPerJob(t *testing.T) {
	if os.Getenv("FACEIDQ_MEASURE") != "1" {
		t.Skip("a measurement: set FACEIDQ_MEASURE=1")
	}
	n := 20000
	if v := os.Getenv("FACEIDQ_MEASURE_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for _, idem := range []bool{false, true} {
		perJob, rdb, last := submitForMemory(t, 0, n, idem)
		warmPerJob, _, _ := submitForMemory(t, 500, n, idem)
		t.Logf("%d pending jobs (Idempotency-Key: %v): %.0f bytes of Redis used_memory per job (%.0f after 500 jobs opened the connections)",
			n, idem, perJob, warmPerJob)
		if !idem {
			logKeys(t, rdb, last.JobId)
		}
	}
}

// logKeys logs the keys that hold job jobID: MEMORY USAGE and encoding.
func logKeys(t *testing.T, rdb *redis.Client, jobID string) {
	t.Helper()
	ctx := context.Background()
	var ks []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); strings.Contains(k, jobID) || !strings.Contains(k, ":j_") && !strings.Contains(k, "idempotency") {
			ks = append(ks, k)
		}
	}
	for _, k := range ks {
		mem, _ := rdb.MemoryUsage(ctx, k).Result()
		enc, _ := rdb.ObjectEncoding(ctx, k).Result()
		typ, _ := rdb.Type(ctx, k).Result()
		t.Logf("  %-50s %-6s %-10s %6d bytes", k, typ, enc, mem)
	}
}

func usedMemory(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}
