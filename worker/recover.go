package worker

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/tasks"
)

// Fast crash recovery.
//
// asynq gives each active task a 30 s lease that a live worker's heartbeat extends
// every 5 s. When a worker dies (kill -9), asynq's own recoverer returns its tasks
// only after the lease expired AND a further 30 s of allowance, and it looks only
// once a minute: 60 to 120 s during which a person's signup job sits in limbo.
//
// recoverLoop looks every Config.RecoverInterval for tasks whose lease expired more
// than Config.RecoverSkew ago, so about 30 to 35 s after the crash, and puts them back
// at the head of their queue with the same state change as asynq's own Requeue. A
// task's lease can only expire when no heartbeat from its worker reached Redis for 30
// s, so a live worker never loses a task to this; the skew allowance covers clocks
// that differ between machines (the lease is written with the worker's clock). A
// requeued task that had already called the upstream calls it again: duplicates are
// bounded by the calls in flight at the crash, and the result store keeps the first
// final result.
//
// asynq's public API cannot do this move: its Inspector lists orphaned tasks
// (TaskInfo.IsOrphaned) but refuses to run, archive or delete an active one. So the
// script below writes asynq's own layout (internal/base: ActiveKey, LeaseKey,
// PendingKey, TaskKey) exactly as its rdb.Requeue does; TestRecoverPinsAsynqKeyLayout
// pins that layout against the asynq version in go.mod.

// recoverExpired requeues tasks of one queue whose lease expired before ARGV[1].
// KEYS: lease zset, active list, pending list (one {queue} slot); ARGV[2] the task
// key prefix of the same queue.
var recoverExpired = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('LREM', KEYS[2], 0, id) > 0 then
    redis.call('RPUSH', KEYS[3], id)
    redis.call('HSET', ARGV[2] .. id, 'state', 'pending')
  end
end
return #ids
`)

// asynqKey is asynq's key of a queue: base.QueueKeyPrefix(queue) + suffix.
func asynqKey(queue, suffix string) string { return "asynq:{" + queue + "}:" + suffix }

// recoverOnce requeues the expired tasks of every queue this worker serves and
// returns how many it moved.
func (w *Worker) recoverOnce(ctx context.Context) int {
	queues := append([]string(nil), tasks.TokenQueues...)
	if w.webhooks != nil {
		queues = append(queues, tasks.QueueWebhooks)
	}
	cutoff := w.cfg.Now().Add(-w.cfg.RecoverSkew).Unix()
	total := 0
	for _, q := range queues {
		n, err := recoverExpired.Run(ctx, w.cfg.Redis,
			[]string{asynqKey(q, "lease"), asynqKey(q, "active"), asynqKey(q, "pending")},
			cutoff, asynqKey(q, "t:")).Int()
		if err != nil {
			w.log.Warn().Err(err).Str("queue", q).Msg("crash recovery scan failed")
			continue
		}
		if n > 0 {
			w.log.Warn().Int("tasks", n).Str("queue", q).Msg("requeued tasks of a worker that stopped heartbeating")
		}
		total += n
	}
	return total
}

func (w *Worker) recoverLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.RecoverInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.recoverOnce(ctx)
		}
	}
}
