package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/tasks"
)

// RedisRateKey is the one GCRA key every redis_rate worker process shares.
const RedisRateKey = "bench:redis_rate:faceid"

// RedisRateOptions configures one redis_rate worker process: asynq with the limiter an
// expert would reach for, one GCRA limiter in Redis (github.com/go-redis/redis_rate)
// shared by every process, at the whole budget with a burst of 1.
type RedisRateOptions struct {
	RedisURL  string
	Endpoint  string
	SecretID  string
	SecretKey string
	// Rate is the whole budget, shared by every process through one key.
	Rate        int
	Concurrency int
}

// allower is the part of *redis_rate.Limiter the handler uses.
type allower interface {
	Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error)
}

// waitAllowed blocks until the shared limiter allows one call or ctx ends. A task that
// is not allowed sleeps RetryAfter inside its handler and asks again: it keeps its
// place (no asynq retry, no random retry delay, no attempt spent), which is what an
// expert does with a limiter that answers "retry after". The price is that waiting
// tasks hold the process's concurrency slots, and whoever asks first after a slot
// opens gets it (GCRA has no queue and no lanes).
func waitAllowed(ctx context.Context, lim allower, key string, limit redis_rate.Limit) error {
	for {
		res, err := lim.Allow(ctx, key, limit)
		if err != nil {
			return fmt.Errorf("bench: redis_rate allow: %w", err)
		}
		if res.Allowed > 0 {
			return nil
		}
		t := time.NewTimer(max(res.RetryAfter, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RunRedisRate runs one redis_rate worker until ctx ends. Queues are strict priority
// (interactive before batch): with one shared limiter there is no per-process share to
// protect, and asynq's StrictPriority is how its docs put urgent work first.
func RunRedisRate(ctx context.Context, o RedisRateOptions) error {
	opt, err := redis.ParseURL(o.RedisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	client, err := faceid.New(faceid.Config{Endpoint: o.Endpoint, SecretID: o.SecretID, SecretKey: o.SecretKey})
	if err != nil {
		return err
	}
	limiter := redis_rate.NewLimiter(rdb)
	limit := redis_rate.Limit{Rate: o.Rate, Burst: 1, Period: time.Second}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:    o.Concurrency,
		Queues:         map[string]int{tasks.QueueInteractive: 2, tasks.QueueBatch: 1},
		StrictPriority: true,
		LogLevel:       asynq.FatalLevel,
	})
	apply := applyHandler(client)
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeApplyToken, func(ctx context.Context, t *asynq.Task) error {
		if err := waitAllowed(ctx, limiter, RedisRateKey, limit); err != nil {
			return err
		}
		return apply(ctx, t)
	})
	if err := srv.Start(mux); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}
