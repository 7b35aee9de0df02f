package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

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

// DeadConfig configures DeadLetters.
type DeadConfig struct {
	// Redis holds the exhausted deliveries (keys.WebhookDead). Required.
	Redis redis.UniversalClient
	// Store records a replayed delivery as pending on its job. Defaults to none.
	Store Store
	// Enqueuer enqueues replays. Defaults to none: Replay fails with ErrNoEnqueuer.
	Enqueuer Enqueuer
	// Retries is the asynq MaxRetry of a replayed delivery. Defaults to the length of
	// DefaultSchedule.
	Retries int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

func (c DeadConfig) withDefaults() DeadConfig {
	c.Retries = cmp.Or(c.Retries, len(DefaultSchedule))
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c DeadConfig) validate() error {
	if c.Redis == nil {
		return errors.New("webhook: DeadConfig.Redis is required")
	}
	return nil
}

// DeadLetters lists and replays exhausted deliveries: the one implementation behind
// Sender.Replay, `faceidq webhook failed|replay` and the API's /v1/webhooks/failed.
// It only enqueues: the workers sign and deliver, so it needs no secret.
type DeadLetters struct {
	rdb     redis.UniversalClient
	store   Store
	enq     Enqueuer
	retries int
	now     func() time.Time
}

// NewDeadLetters returns a DeadLetters. It does no I/O.
func NewDeadLetters(cfg DeadConfig) (*DeadLetters, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &DeadLetters{rdb: cfg.Redis, store: cfg.Store, enq: cfg.Enqueuer, retries: cfg.Retries, now: cfg.Now}, nil
}

// DeadDelivery is one exhausted delivery, as `faceidq webhook failed` and
// GET /v1/webhooks/failed show it: the fields of tasks.Webhook and the JobId.
type DeadDelivery struct {
	JobId     string    `json:"JobId"`
	URL       string    `json:"URL"`
	Status    string    `json:"Status"` // always exhausted
	Attempts  int       `json:"Attempts"`
	LastError string    `json:"LastError,omitempty"`
	LastAt    time.Time `json:"LastAt"` // when it was given up
}

// List returns the exhausted deliveries, oldest first, read in one round trip.
func (d *DeadLetters) List(ctx context.Context) ([]DeadDelivery, error) {
	var ids *redis.ZSliceCmd
	var payloads *redis.MapStringStringCmd
	_, err := d.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		ids = pipe.ZRangeWithScores(ctx, keys.WebhookDead, 0, -1)
		payloads = pipe.HGetAll(ctx, keys.WebhookDeadPayloads)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: list exhausted deliveries: %w", err)
	}
	all := payloads.Val()
	out := make([]DeadDelivery, 0, len(ids.Val()))
	for _, z := range ids.Val() {
		id, _ := z.Member.(string)
		dd := DeadDelivery{JobId: id, Status: StatusExhausted, LastAt: time.UnixMilli(int64(z.Score)).UTC()}
		if p, err := decodePayload([]byte(all[id])); err == nil {
			dd.URL, dd.Attempts, dd.LastError = p.URL, p.PriorAttempts, p.LastError
		}
		out = append(out, dd)
	}
	return out, nil
}

// Exhausted returns the JobIds of the exhausted deliveries, oldest first.
func (d *DeadLetters) Exhausted(ctx context.Context) ([]string, error) {
	ids, err := d.rdb.ZRange(ctx, keys.WebhookDead, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("webhook: list exhausted deliveries: %w", err)
	}
	return ids, nil
}

func (d *DeadLetters) record(ctx context.Context, jobID string, w tasks.Webhook) error {
	if d.store == nil {
		return nil
	}
	if err := d.store.RecordWebhook(ctx, jobID, w); err != nil {
		return fmt.Errorf("webhook: record %s state of %s: %w", w.Status, jobID, err)
	}
	return nil
}

// Replay enqueues the exhausted delivery of job jobID again, with the same webhook-id and
// body and a fresh schedule, records it as pending, and forgets it as exhausted. Two
// concurrent replays of the same exhaustion enqueue one task (its asynq TaskID is derived
// from the event id and the attempts so far). It returns ErrNotExhausted when there is
// nothing to replay.
func (d *DeadLetters) Replay(ctx context.Context, jobID string) error {
	if d.enq == nil {
		return ErrNoEnqueuer
	}
	raw, err := d.rdb.HGet(ctx, keys.WebhookDeadPayloads, jobID).Bytes()
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
	if err := d.record(ctx, jobID, w); err != nil {
		return fmt.Errorf("webhook: replay %s: %w", jobID, err)
	}
	t := asynq.NewTask(tasks.TypeDeliverWebhook, b,
		asynq.Queue(tasks.QueueWebhooks),
		asynq.MaxRetry(d.retries),
		asynq.Timeout(TaskTimeout),
		asynq.TaskID(taskID(p.ID)+":replay:"+strconv.Itoa(p.PriorAttempts)),
	)
	if _, err := d.enq.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		at := d.now().UTC()
		w = tasks.Webhook{URL: p.URL, Status: StatusExhausted, Attempts: p.PriorAttempts, LastError: lastErr, LastAt: &at}
		err = fmt.Errorf("webhook: replay %s: enqueue: %w", jobID, err)
		if rerr := d.record(context.WithoutCancel(ctx), jobID, w); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	_, err = d.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
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
func (d *DeadLetters) ReplayAll(ctx context.Context) (int, error) {
	ids, err := d.Exhausted(ctx)
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
		if err := d.Replay(ctx, id); err != nil {
			if !errors.Is(err, ErrNotExhausted) { // replayed meanwhile by someone else
				errs = append(errs, err)
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// deadLetters returns the DeadLetters of s: its Redis, store, enqueuer, schedule and clock.
func (s *Sender) deadLetters() *DeadLetters {
	return &DeadLetters{rdb: s.rdb, store: s.store, enq: s.enq, retries: len(s.schedule), now: s.now}
}

// Exhausted returns the JobIds of the exhausted deliveries, oldest first.
func (s *Sender) Exhausted(ctx context.Context) ([]string, error) {
	return s.deadLetters().Exhausted(ctx)
}

// Replay is DeadLetters.Replay with the Sender's schedule and store.
func (s *Sender) Replay(ctx context.Context, jobID string) error {
	return s.deadLetters().Replay(ctx, jobID)
}

// ReplayAll is DeadLetters.ReplayAll with the Sender's schedule and store.
func (s *Sender) ReplayAll(ctx context.Context) (int, error) {
	return s.deadLetters().ReplayAll(ctx)
}
