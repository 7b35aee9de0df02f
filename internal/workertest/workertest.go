// Package workertest starts faceidq workers for tests, assembled as a worker process
// assembles itself: its own upstream client and global-limiter instance, sharing
// only Redis with the other workers, and a short retry backoff.
package workertest

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/worker"
)

// Upstream names the upstream a test worker calls.
type Upstream struct {
	Endpoint            string // e.g. the simulator's http://127.0.0.1:port
	SecretID, SecretKey string
}

// Start starts a worker on rdb calling up at 20 calls/s per action with concurrency 8, and
// shuts it down when the test ends.
func Start(tb testing.TB, rdb redis.UniversalClient, up Upstream) *worker.Worker {
	tb.Helper()
	client, err := faceid.New(faceid.Config{Endpoint: up.Endpoint, SecretID: up.SecretID, SecretKey: up.SecretKey})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := worker.New(worker.Config{
		Redis: rdb, Upstream: client, Concurrency: 8,
		Limiters: worker.RateLimiters(rdb, client.Account(), client.Endpoint(), ratelimit.Config{Rate: 20}, nil),
		Backoff:  worker.BackoffConfig{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Shutdown)
	return w
}
