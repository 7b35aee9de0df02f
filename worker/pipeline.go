package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// ProcessTask runs one task of h's action: validate → budget → call → classify →
// record (see action).
func (h *handler[P, R]) ProcessTask(ctx context.Context, t *asynq.Task) error {
	w, a := h.w, h.a
	taskID, _ := asynq.GetTaskID(ctx)
	p, j, err := a.decode(taskID, t.Payload())
	if err != nil {
		w.log.Error().Err(err).Str("type", t.Type()).Msg("dropping a task whose payload cannot be read")
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := w.log.With().Str("job_id", j.id).Str("lane", string(j.lane)).Logger()
	if j.batchID != "" {
		log = log.With().Str("batch_id", j.batchID).Logger()
	}

	if ok, err := a.validate(ctx, p, log); !ok || err != nil {
		return err
	}
	// A job past its deadline ends expired before it takes a slot; so does one whose
	// deadline passes while it waits for one (the wait gives up, reserving nothing).
	if !j.deadline.IsZero() && !w.cfg.Now().Before(j.deadline) {
		return h.expire(ctx, p, j, log)
	}
	if paused, reason := w.watcher.Paused(); paused {
		return deferFor(w.cfg.PausedDelay, "pipeline paused (%s)", reason)
	}
	if err := a.inputs(ctx, p, log); err != nil {
		if errors.Is(err, asynq.SkipRetry) { // failed for good before a call
			_ = h.backlog.Served(context.WithoutCancel(ctx), j.lane)
		}
		return err
	}

	// The credential set (budget.go): the soonest slot among those serving the job.
	b, err := w.pick(ctx, a.name(), a.route(p))
	if nb := (*noBudgetError)(nil); errors.As(err, &nb) {
		return a.fail(ctx, p, log, CodeNoBudget, nb.reason)
	} else if err != nil {
		return deferFor(w.cfg.PausedDelay, "choose a credential set: %v", err)
	}
	lim := b.limiters[a.name()]
	predicted := h.gauge.enter(j.lane, time.Now())
	if !j.deadline.IsZero() && predicted > 0 && w.cfg.Now().Add(predicted).After(j.deadline) {
		// The tasks ahead of it here take longer than it has left (slack.go).
		h.gauge.leave(j.lane, false, time.Now())
		return h.expire(ctx, p, j, log)
	}
	callBy := j.deadline // the last moment a call may leave so that it arrives in time
	if !callBy.IsZero() {
		callBy = callBy.Add(-deadlineMargin)
	}
	res, err := w.waitSlot(ctx, lim, h.m, j.lane, callBy)
	h.gauge.leave(j.lane, err == nil, time.Now())
	if errors.Is(err, errDeadline) {
		return h.expire(ctx, p, j, log)
	}
	if err != nil {
		return err
	}
	if !callBy.IsZero() && w.cfg.Now().After(callBy) {
		// The slot came after the deadline (a late grant): it goes unused, which
		// only undershoots the rate; the job never calls late.
		return h.expire(ctx, p, j, log)
	}
	if paused, reason := w.watcher.Paused(); paused {
		return deferFor(w.cfg.PausedDelay, "pipeline paused (%s)", reason)
	}
	// The call goes out right at its slot: the attempt is recorded (the job marked
	// running) alongside it, not before it, so that a slow Redis round trip cannot
	// push the call next to the following slot's.
	type mark struct {
		attempt int
		err     error
	}
	marked := make(chan mark, 1)
	go func() {
		n, err := a.begin(context.WithoutCancel(ctx), p)
		marked <- mark{n, err}
		if n == 1 { // the job's first slot: it has left the queue for good
			_ = h.backlog.Served(context.WithoutCancel(ctx), j.lane)
		}
	}()
	callCtx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	start := time.Now()
	resp, err := a.call(callCtx, p, b)
	done := time.Now()
	cancel()

	m := <-marked
	switch {
	case errors.Is(m.err, results.ErrFinal):
		// Canceled (or finished by a duplicate) while this run waited for its slot:
		// whatever the call returned, the job's outcome is already written.
		a.finished(ctx, p, log)
		return nil
	case errors.Is(m.err, results.ErrNotFound):
		return nil
	case m.err != nil:
		log.Warn().Err(m.err).Msg("could not mark the job running")
	}
	log = log.With().Int("attempt", m.attempt).Logger()
	if m.attempt == 1 {
		w.cfg.Metrics.ObservePickup(string(j.lane), w.cfg.Now().Sub(j.createdAt))
	}

	if err == nil {
		lim.Observe(res, done)
		h.m.ObserveUpstream("OK", "ok", done.Sub(start))
		w.upstreamUp(ctx)
		return a.succeed(ctx, p, b, resp, log)
	}
	code, message, requestID := describe(err)
	class := faceid.Classify(err)
	var apiErr *faceid.APIError
	if errors.As(err, &apiErr) && apiErr.RequestID != "" {
		lim.Observe(res, done) // the upstream answered: its timing counts
	}
	h.m.ObserveUpstream(code, className(class), done.Sub(start))
	log = log.With().Str("code", code).Str("request_id", requestID).Logger()

	switch class {
	case faceid.RateLimited:
		if err := lim.Penalize(ctx, res); err != nil {
			log.Warn().Err(err).Msg("could not slow the limiter down")
		}
		h.m.ObservePenalty()
		w.cfg.Metrics.ObserveRetry(className(class))
		log.Warn().Msg("upstream rate limit hit: slowing down and retrying without spending an attempt")
		a.retrying(ctx, p, code, message)
		return deferFor(w.cfg.RateLimitedDelay, "rate limited (%s)", code)

	case faceid.Account:
		changed, perr := w.switch_.Pause(ctx, code)
		if perr != nil {
			log.Error().Err(perr).Msg("could not pause the pipeline")
		}
		if changed {
			w.cfg.Metrics.SetPaused(true)
			log.Error().Str("message", message).
				Msg("PIPELINE PAUSED: the upstream answered an account-level error; no job is failed for it; " +
					"jobs wait in their queues until the account is fixed and `faceidq resume` is run")
		}
		_ = w.watcher.Refresh(ctx)
		a.retrying(ctx, p, code, "pipeline paused: "+message)
		w.cfg.Metrics.ObserveRetry(className(class))
		return deferFor(w.cfg.PausedDelay, "account-level error %s", code)

	case faceid.Permanent:
		return a.fail(ctx, p, log, code, message)
	}

	// Retryable.
	if outageError(code) {
		w.markUpstreamDown(ctx)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	if retried >= w.cfg.MaxRetries {
		log.Warn().Int("retries", retried).Msg("retries exhausted")
		return a.fail(ctx, p, log, code, message)
	}
	w.cfg.Metrics.ObserveRetry(className(class))
	log.Info().Int("retries", retried).Msg("transient upstream error; retrying with backoff")
	a.retrying(ctx, p, code, message)
	return fmt.Errorf("upstream %s: %s", code, message)
}

// expire ends job j, past its deadline, as expired (when its action has deadlines)
// and counts it gone from its queue.
func (h *handler[P, R]) expire(ctx context.Context, p P, j job, log zerolog.Logger) error {
	e, ok := any(h.a).(expirer[P])
	if !ok {
		return deferFor(0, "deadline passed for an action without deadlines")
	}
	if err := e.expire(ctx, p, log); err != nil {
		return err
	}
	_ = h.backlog.Served(context.WithoutCancel(ctx), j.lane)
	return nil
}

// deadlineMargin is kept between a call's start and its job's deadline: the time the
// request takes to reach the upstream, so that it arrives in time.
const deadlineMargin = 10 * time.Millisecond

// errDeadline is waitSlot's answer when the job's deadline passed before a slot could
// be reserved: nothing was reserved.
var errDeadline = errors.New("worker: the job's deadline passed before a slot")

// waitSlot waits for a slot of lim, the budget of a task's action, and records the
// wait in m, the action's metrics. A batch job that
// cannot reserve one within Config.MaxSlotWait gives its worker back (a reserved slot
// is always used), and every wait ends when shutdown begins: the job goes back to its
// queue without spending an attempt. A job with a deadline (jobDeadline, zero: none)
// reserves only a slot before it, or none (errDeadline).
func (w *Worker) waitSlot(ctx context.Context, lim Limiter, m *metrics.Action, prio tasks.Priority, jobDeadline time.Time) (ratelimit.Reservation, error) {
	lane, deadline := ratelimit.Interactive, time.Time{}
	if prio == tasks.PriorityBatch {
		lane, deadline = ratelimit.Batch, time.Now().Add(w.cfg.MaxSlotWait)
	}
	byJob := false
	if !jobDeadline.IsZero() && (deadline.IsZero() || jobDeadline.Before(deadline)) {
		// The worker's clock (Config.Now) set the deadline; the limiter waits on the
		// real clock: convert through the time left.
		deadline, byJob = time.Now().Add(jobDeadline.Sub(w.cfg.Now())), true
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.stopCtx, cancel)()
	start := time.Now()
	res, err := lim.WaitBefore(wctx, lane, deadline)
	m.ObserveLimiterWait(lane.String(), time.Since(start))
	m.SetLimiterInterval(lim.Interval())
	switch {
	case err == nil:
		return res, nil
	case w.stopCtx.Err() != nil:
		return res, deferFor(0, "shutting down")
	case ctx.Err() != nil:
		return res, deferFor(0, "task context ended while waiting for a slot: %v", ctx.Err())
	case errors.Is(err, ratelimit.ErrNoSlot) && byJob:
		return res, errDeadline
	case errors.Is(err, ratelimit.ErrNoSlot):
		return res, deferFor(0, "no rate slot within %v", w.cfg.MaxSlotWait)
	}
	return res, deferFor(w.cfg.PausedDelay, "rate limiter: %v", err)
}

// describe returns an error's code, message and request id for records and logs.
func describe(err error) (code, message, requestID string) {
	var apiErr *faceid.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code, apiErr.Message, apiErr.RequestID
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "ClientError.Timeout", "the upstream did not answer in time", ""
	}
	return "ClientError.NetworkError", err.Error(), ""
}

func className(c faceid.Class) string {
	switch c {
	case faceid.RateLimited:
		return "rate_limited"
	case faceid.Permanent:
		return "permanent"
	case faceid.Account:
		return "account"
	}
	return "retryable"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
