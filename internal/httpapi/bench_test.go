package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/asynqwire"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// BenchmarkPostToken measures POST /v1/tokens through the handler (no network on
// the HTTP side) on a real redis-server, with a bearer token and metrics, as
// `faceidq api` runs it. The end-to-end load test is `go run ./cmd/faceidq-load`.
func BenchmarkPostToken(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	self, redisCPU := cpuTime(0), cpuTime(srv.Pid())
	benchmarkPostToken(b, srv.Client(b))
	b.ReportMetric(float64(cpuTime(0)-self)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(cpuTime(srv.Pid())-redisCPU)/float64(b.N), "redis-cpu-ns/op")
}

// cpuTime is the CPU time (user and system) process pid has used, in nanoseconds;
// pid 0 is this process. 0 when it cannot be read.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields 14 and 15 (utime, stime), in clock ticks (USER_HZ, 100 on Linux), after
	// the command name in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// BenchmarkPostTokenEmbedded is BenchmarkPostToken on the embedded Redis of
// `faceidq serve` (miniredis): where its time goes (README, "The embedded Redis").
// Each sub-benchmark starts with a backlog of that many pending tasks: miniredis
// copies a whole list on every LPUSH, so a POST costs more the longer the backlog.
func BenchmarkPostTokenEmbedded(b *testing.B) {
	for _, backlog := range []int{0, 20_000, 100_000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			m := redistest.Mini(b)
			rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
			b.Cleanup(func() { _ = rdb.Close() })
			ctx := context.Background()
			for i := 0; i < backlog; i += 1000 {
				ids := make([]any, 1000)
				for k := range ids {
					ids[k] = fmt.Sprintf("j_backlog%08d", i+k)
				}
				// RPUSH: filling the backlog with LPUSH would itself be quadratic.
				if err := rdb.RPush(ctx, asynqwire.PendingKey(tasks.QueueInteractive), ids...).Err(); err != nil {
					b.Fatal(err)
				}
			}
			benchmarkPostToken(b, rdb)
		})
	}
}

func benchmarkPostToken(b *testing.B, rdb redis.UniversalClient) {
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	a, err := New(Config{Producer: p, Redis: rdb, Metrics: metrics.New(), Tokens: []string{"bench-token"}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	const body = `{"RedirectURL":"https://example.com/signup/done","Extra":"load-test-user"}`
	b.ReportAllocs()
	b.SetParallelism(32) // many requests in flight, as under load
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer bench-token")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("POST = %d %s", rec.Code, rec.Body)
			}
		}
	})
}
