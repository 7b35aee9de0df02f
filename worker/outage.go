package worker

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// Recovery after an upstream outage.
//
// While the upstream cannot be reached, every job backs off exponentially (up to
// Config.Backoff.Max). Left alone, the backlog would then trickle back over the next
// minute or two after the upstream returns, each job waiting out its own delay. So a
// worker that meets an outage-type error (no answer, a 5xx page) marks the upstream
// down in Redis, and the first success anywhere afterwards clears the mark and moves
// every job waiting for a retry back to its queue at once; the global limiter paces
// them as usual. Errors the upstream answers itself (InternalError) do not mark it
// down: those jobs keep their backoff.

// outageTTL bounds how long a down mark lasts without being renewed.
const outageTTL = 10 * time.Minute

// outageError reports whether code means the upstream could not be reached or
// answered with something other than the API (as opposed to an API error).
func outageError(code string) bool {
	return strings.HasPrefix(code, "ClientError.") || code == "ServiceUnavailable"
}

func (w *Worker) markUpstreamDown(ctx context.Context) {
	_ = w.cfg.Redis.Set(ctx, keys.UpstreamDown, tasks.FormatTime(w.cfg.Now()), outageTTL).Err()
}

// upstreamUp runs after every success: when the upstream was marked down, it moves
// the jobs waiting for a retry back to their queues.
func (w *Worker) upstreamUp(ctx context.Context) {
	since, err := w.cfg.Redis.GetDel(ctx, keys.UpstreamDown).Result()
	if errors.Is(err, redis.Nil) || err != nil {
		return
	}
	insp := asynq.NewInspectorFromRedisClient(w.cfg.Redis)
	total := 0
	for _, q := range tasks.TokenQueues {
		n, err := insp.RunAllRetryTasks(q)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			w.log.Warn().Err(err).Str("queue", q).Msg("could not rerun jobs waiting for a retry")
		}
		total += n
	}
	w.log.Warn().Str("down_since", since).Int("jobs", total).
		Msg("upstream reachable again: jobs waiting in backoff run now")
}
