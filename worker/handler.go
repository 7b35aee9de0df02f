package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/tasks"
)

// handleApply runs one token-apply task.
func (w *Worker) handleApply(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.DecodeApplyPayload(t.Payload())
	if err != nil {
		w.log.Error().Err(err).Msg("dropping a task whose payload cannot be read")
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := w.log.With().Str("job_id", p.JobID).Str("lane", string(p.Priority)).Logger()
	if p.BatchID != "" {
		log = log.With().Str("batch_id", p.BatchID).Logger()
	}

	switch st, err := w.results.Status(ctx, p.JobID); {
	case errors.Is(err, results.ErrNotFound):
		log.Warn().Msg("job record is gone; dropping its task")
		return nil
	case err != nil:
		return deferFor(w.cfg.PausedDelay, "read job state: %v", err)
	case st.Final():
		// A duplicate run (e.g. after a crash between the result write and the task's
		// completion): finish the follow-ups that may not have happened.
		w.afterFinal(ctx, p, log)
		return nil
	}
	if paused, reason := w.watcher.Paused(); paused {
		return deferFor(w.cfg.PausedDelay, "pipeline paused (%s)", reason)
	}

	var input = p.Input
	if p.ImageRef != "" {
		img, err := w.images.Get(ctx, p.ImageRef)
		if errors.Is(err, images.ErrNotFound) {
			return w.fail(ctx, p, log, "FailedOperation.ImageExpired",
				"the job's CompareImageBase64 expired before the job could run; submit the job again")
		}
		if err != nil {
			return deferFor(w.cfg.PausedDelay, "read image: %v", err)
		}
		input.CompareImageBase64 = &img
	}

	res, err := w.waitSlot(ctx, p.Priority)
	if err != nil {
		return err
	}
	if paused, reason := w.watcher.Paused(); paused {
		return deferFor(w.cfg.PausedDelay, "pipeline paused (%s)", reason)
	}
	// The call goes out right at its slot: the record is marked running (and the
	// attempt counted) alongside it, not before it, so that a slow Redis round trip
	// cannot push the call next to the following slot's.
	type mark struct {
		attempt int
		err     error
	}
	marked := make(chan mark, 1)
	go func() {
		n, err := w.results.MarkRunning(context.WithoutCancel(ctx), p.JobID)
		marked <- mark{n, err}
	}()
	callCtx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	start := time.Now()
	resp, err := w.cfg.Upstream.Apply(callCtx, p.Region, &input)
	done := time.Now()
	cancel()

	m := <-marked
	switch {
	case errors.Is(m.err, results.ErrFinal):
		// Canceled (or finished by a duplicate) while this run waited for its slot:
		// whatever the call returned, the job's outcome is already written.
		w.afterFinal(ctx, p, log)
		return nil
	case errors.Is(m.err, results.ErrNotFound):
		return nil
	case m.err != nil:
		log.Warn().Err(m.err).Msg("could not mark the job running")
	}
	log = log.With().Int("attempt", m.attempt).Logger()
	if m.attempt == 1 {
		w.cfg.Metrics.ObservePickup(string(p.Priority), w.cfg.Now().Sub(p.CreatedAt))
	}

	if err == nil {
		w.cfg.Limiter.Observe(res, done)
		w.cfg.Metrics.ObserveUpstream("OK", "ok", done.Sub(start))
		w.upstreamUp(ctx)
		return w.succeed(ctx, p, log, resp)
	}
	code, message, requestID := describe(err)
	class := faceid.Classify(err)
	var apiErr *faceid.APIError
	if errors.As(err, &apiErr) && apiErr.RequestID != "" {
		w.cfg.Limiter.Observe(res, done) // the upstream answered: its timing counts
	}
	w.cfg.Metrics.ObserveUpstream(code, className(class), done.Sub(start))
	log = log.With().Str("code", code).Str("request_id", requestID).Logger()

	switch class {
	case faceid.RateLimited:
		if err := w.cfg.Limiter.Penalize(ctx, res); err != nil {
			log.Warn().Err(err).Msg("could not slow the limiter down")
		}
		w.cfg.Metrics.ObservePenalty()
		w.cfg.Metrics.ObserveRetry(className(class))
		log.Warn().Msg("upstream rate limit hit: slowing down and retrying without spending an attempt")
		_ = w.results.MarkRetrying(ctx, p.JobID, code, message)
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
		_ = w.results.MarkRetrying(ctx, p.JobID, code, "pipeline paused: "+message)
		w.cfg.Metrics.ObserveRetry(className(class))
		return deferFor(w.cfg.PausedDelay, "account-level error %s", code)

	case faceid.Permanent:
		return w.fail(ctx, p, log, code, message)
	}

	// Retryable.
	if outageError(code) {
		w.markUpstreamDown(ctx)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	if retried >= w.cfg.MaxRetries {
		log.Warn().Int("retries", retried).Msg("retries exhausted")
		return w.fail(ctx, p, log, code, message)
	}
	w.cfg.Metrics.ObserveRetry(className(class))
	log.Info().Int("retries", retried).Msg("transient upstream error; retrying with backoff")
	_ = w.results.MarkRetrying(ctx, p.JobID, code, message)
	return fmt.Errorf("upstream %s: %s", code, message)
}

// waitSlot waits for a global rate-limit slot. A batch job that cannot reserve one
// within Config.MaxSlotWait gives its worker back (a reserved slot is always used),
// and every wait ends when shutdown begins: the job goes back to its queue without
// spending an attempt.
func (w *Worker) waitSlot(ctx context.Context, prio tasks.Priority) (ratelimit.Reservation, error) {
	lane, deadline := ratelimit.Interactive, time.Time{}
	if prio == tasks.PriorityBatch {
		lane, deadline = ratelimit.Batch, time.Now().Add(w.cfg.MaxSlotWait)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.stopCtx, cancel)()
	start := time.Now()
	res, err := w.cfg.Limiter.WaitBefore(wctx, lane, deadline)
	w.cfg.Metrics.ObserveLimiterWait(lane.String(), time.Since(start))
	w.cfg.Metrics.SetLimiterInterval(w.cfg.Limiter.Interval())
	switch {
	case err == nil:
		return res, nil
	case w.stopCtx.Err() != nil:
		return res, deferFor(0, "shutting down")
	case ctx.Err() != nil:
		return res, deferFor(0, "task context ended while waiting for a slot: %v", ctx.Err())
	case errors.Is(err, ratelimit.ErrNoSlot):
		return res, deferFor(0, "no rate slot within %v", w.cfg.MaxSlotWait)
	}
	return res, deferFor(w.cfg.PausedDelay, "rate limiter: %v", err)
}

// succeed records a success and runs the follow-ups.
func (w *Worker) succeed(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger, resp *faceid.ApplyWebVerificationBizTokenIntlResponseParams) error {
	f := results.Final{Status: tasks.StatusSucceeded, ExpiresAt: w.cfg.Now().Add(w.cfg.TokenValidity)}
	if resp != nil {
		f.BizToken = deref(resp.BizToken)
		f.VerificationURL = deref(resp.VerificationURL)
		f.RequestID = deref(resp.RequestId)
	}
	return w.finish(ctx, p, log.With().Str("request_id", f.RequestID).Logger(), f)
}

// fail records a failure and runs the follow-ups. The task is not retried.
func (w *Worker) fail(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger, code, message string) error {
	if err := w.finish(ctx, p, log, results.Final{Status: tasks.StatusFailed, ErrorCode: code, ErrorMessage: message}); err != nil {
		return err
	}
	return fmt.Errorf("job failed with %s: %w", code, asynq.SkipRetry)
}

func (w *Worker) finish(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger, f results.Final) error {
	// The result must be written even if the task's context is ending: the upstream
	// call was made and its outcome must not be lost.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	changed, err := w.results.Finish(wctx, p.JobID, f)
	if err != nil && !errors.Is(err, results.ErrNotFound) {
		// Leave the task to be retried: the next run finds the job not final and
		// calls again, which is the at-least-once price of a Redis outage here.
		return fmt.Errorf("record result of %s: %w", p.JobID, err)
	}
	if changed {
		w.cfg.Metrics.ObserveFinished(string(f.Status), string(p.Priority), w.cfg.Now().Sub(p.CreatedAt))
		ev := log.Info()
		if f.Status != tasks.StatusSucceeded {
			ev = log.Warn().Str("code", f.ErrorCode)
		}
		ev.Str("status", string(f.Status)).Msg("job final")
	}
	w.afterFinal(wctx, p, log)
	return nil
}

// afterFinal releases the job's image and enqueues its webhook. Both are idempotent,
// so a duplicate run repeats them safely.
func (w *Worker) afterFinal(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger) {
	if p.ImageRef != "" {
		if err := w.images.Release(ctx, p.ImageRef); err != nil {
			log.Warn().Err(err).Msg("could not release the job's image; its TTL will delete it")
		}
	}
	if w.cfg.Webhooks == nil {
		return
	}
	job, err := w.results.Get(ctx, p.JobID)
	if err != nil {
		log.Warn().Err(err).Msg("could not read the final job for its webhook")
		return
	}
	t, err := w.cfg.Webhooks.TaskFor(job)
	if errors.Is(err, webhook.ErrNoURL) {
		return
	}
	if err != nil {
		log.Error().Err(err).Msg("could not build the webhook task")
		return
	}
	if _, err := w.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		log.Error().Err(err).Msg("could not enqueue the webhook")
	}
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
