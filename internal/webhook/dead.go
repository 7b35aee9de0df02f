package webhook

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ErrNotExhausted is returned by Replay for a job that has no exhausted delivery.
var ErrNotExhausted = errors.New("webhook: no exhausted delivery for this job")

// ErrNoEnqueuer is returned by Replay when the Sender has no Config.Enqueuer.
var ErrNoEnqueuer = errors.New("webhook: replay needs Config.Enqueuer")

// markExhausted keeps an exhausted delivery for Replay: its JobId in keys.WebhookDead
// and its payload, with the attempts made so far, in keys.WebhookDeadPayloads.
func (s *Sender) markExhausted(ctx context.Context, p *payload, attempts int, lastErr string) error {
	dead := *p
	dead.PriorAttempts = attempts
	dead.LastError = lastErr
	b, err := dead.encode()
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.ZAdd(ctx, keys.WebhookDead, redis.Z{Score: float64(s.now().UnixMilli()), Member: p.JobID})
		pipe.HSet(ctx, keys.WebhookDeadPayloads, p.JobID, b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: keep exhausted delivery of %s: %w", p.JobID, err)
	}
	return nil
}

// Exhausted returns the JobIds of the exhausted deliveries, oldest first.
func (s *Sender) Exhausted(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, keys.WebhookDead, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("webhook: list exhausted deliveries: %w", err)
	}
	return ids, nil
}

// Replay enqueues the exhausted delivery of job jobID again, with the same webhook-id and
// body and a fresh schedule, records it as pending, and forgets it as exhausted. Two
// concurrent replays of the same exhaustion enqueue one task (its asynq TaskID is derived
// from the event id and the attempts so far). It returns ErrNotExhausted when there is
// nothing to replay.
func (s *Sender) Replay(ctx context.Context, jobID string) error {
	if s.enq == nil {
		return ErrNoEnqueuer
	}
	raw, err := s.rdb.HGet(ctx, keys.WebhookDeadPayloads, jobID).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("webhook: replay %s: %w", jobID, ErrNotExhausted)
	}
	if err != nil {
		return fmt.Errorf("webhook: replay %s: %w", jobID, err)
	}
	p, err := decodePayload(raw)
	if err != nil {
		return fmt.Errorf("webhook: replay %s: %w", jobID, err)
	}
	lastErr := p.LastError
	p.LastError = ""
	b, err := p.encode()
	if err != nil {
		return err
	}
	w := tasks.Webhook{URL: p.URL, Status: StatusPending, Attempts: p.PriorAttempts}
	if err := s.record(ctx, jobID, w); err != nil {
		return fmt.Errorf("webhook: replay %s: %w", jobID, err)
	}
	t := asynq.NewTask(tasks.TypeDeliverWebhook, b,
		asynq.Queue(tasks.QueueWebhooks),
		asynq.MaxRetry(len(s.schedule)),
		asynq.Timeout(TaskTimeout),
		asynq.TaskID(taskID(p.ID)+":replay:"+strconv.Itoa(p.PriorAttempts)),
	)
	if _, err := s.enq.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		at := s.now().UTC()
		w = tasks.Webhook{URL: p.URL, Status: StatusExhausted, Attempts: p.PriorAttempts, LastError: lastErr, LastAt: &at}
		err = fmt.Errorf("webhook: replay %s: enqueue: %w", jobID, err)
		if rerr := s.record(context.WithoutCancel(ctx), jobID, w); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.ZRem(ctx, keys.WebhookDead, jobID)
		pipe.HDel(ctx, keys.WebhookDeadPayloads, jobID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: replay %s: forget exhausted delivery: %w", jobID, err)
	}
	return nil
}

// ReplayAll replays every exhausted delivery (see Replay) and returns how many were
// enqueued. It goes on after a failed replay and returns the failures joined.
func (s *Sender) ReplayAll(ctx context.Context) (int, error) {
	ids, err := s.Exhausted(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("webhook: replay all: %w", err))
			break
		}
		if err := s.Replay(ctx, id); err != nil {
			if !errors.Is(err, ErrNotExhausted) { // replayed meanwhile by someone else
				errs = append(errs, err)
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
