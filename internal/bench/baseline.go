package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/tasks"
)

// BaselineOptions configures one asynq-wiki worker process: plain asynq used the way
// its wiki recommends for rate limiting (a per-process golang.org/x/time/rate
// limiter, a RateLimitError that is not a failure and is retried after a random
// 0-10 s, weighted queues).
type BaselineOptions struct {
	RedisURL  string
	Endpoint  string
	SecretID  string
	SecretKey string
	// Rate is the whole budget; each of Processes workers gets Rate/Processes.
	Rate        float64
	Processes   int
	Concurrency int
}

type rateLimitError struct{ retryIn time.Duration }

func (e *rateLimitError) Error() string { return fmt.Sprintf("rate limited, retry in %v", e.retryIn) }

// RunBaseline runs one asynq-wiki worker until ctx ends.
func RunBaseline(ctx context.Context, o BaselineOptions) error {
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
	share := o.Rate / float64(max(1, o.Processes))
	limiter := rate.NewLimiter(rate.Limit(share), max(1, int(share)))
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: o.Concurrency,
		Queues:      map[string]int{tasks.QueueInteractive: 6, tasks.QueueBatch: 1},
		IsFailure: func(err error) bool {
			var rl *rateLimitError
			return !errors.As(err, &rl)
		},
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			var rl *rateLimitError
			if errors.As(err, &rl) {
				return rl.retryIn
			}
			return asynq.DefaultRetryDelayFunc(n, err, t)
		},
		LogLevel: asynq.FatalLevel,
	})
	apply := applyHandler(client)
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeApplyToken, func(ctx context.Context, t *asynq.Task) error {
		if !limiter.Allow() {
			return &rateLimitError{retryIn: time.Duration(rand.IntN(10)) * time.Second}
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

// applyHandler makes the upstream call of one apply task, the same for every asynq mode.
func applyHandler(client *faceid.Client) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		p, err := tasks.DecodeApplyPayload(t.Payload())
		if err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		_, err = client.Apply(ctx, p.Region, &p.Input)
		return err
	}
}
