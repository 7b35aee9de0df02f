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
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// applyAction mints a BizToken (ApplyWebVerificationBizTokenIntl) for a job: the
// tasks of type tasks.TypeApplyToken. The job record moves through results.Store
// (running, retrying, final); the image is read right before the call and released
// once the job is final; a final job's webhook is enqueued.
type applyAction struct{ w *Worker }

var _ action[*tasks.ApplyPayload, *faceid.ApplyWebVerificationBizTokenIntlResponseParams] = applyAction{}

func (applyAction) taskType() string { return tasks.TypeApplyToken }
func (applyAction) name() string     { return faceid.Action }

func (applyAction) decode(taskID string, b []byte) (*tasks.ApplyPayload, job, error) {
	p, err := tasks.DecodeApplyTask(taskID, b)
	if err != nil {
		return nil, job{}, err
	}
	return p, job{id: p.JobID, lane: p.Priority, batchID: p.BatchID, createdAt: p.CreatedAt, deadline: p.Deadline}, nil
}

// validate reads the job's input from its record (the task carries the ids only) into
// p, this run's own copy, and checks its state.
func (a applyAction) validate(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger) (bool, error) {
	rec, st, err := a.w.results.ApplyInput(ctx, p.JobID)
	if err == nil {
		p.Region, p.Input, p.CallbackURL, p.FetchResult = rec.Region, rec.Input, rec.CallbackURL, rec.FetchResult
		if p.ImageRef == "" { // a campaign's image fed from its file is in the task only
			p.ImageRef = rec.ImageRef
		}
	}
	switch {
	case errors.Is(err, results.ErrNotFound):
		log.Warn().Msg("job record is gone; dropping its task")
		return false, nil
	case err != nil:
		return false, deferFor(a.w.cfg.PausedDelay, "read job state: %v", err)
	case st.Final():
		// A duplicate run (e.g. after a crash between the result write and the task's
		// completion): finish the follow-ups that may not have happened.
		a.finished(ctx, p, log)
		return false, nil
	}
	return true, nil
}

// inputs puts the job's stored image into the request (the decoded payload is this
// run's own copy).
func (a applyAction) inputs(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger) error {
	if p.ImageRef == "" {
		return nil
	}
	img, err := a.w.images.Get(ctx, p.ImageRef)
	if errors.Is(err, images.ErrNotFound) {
		return a.fail(ctx, p, log, "FailedOperation.ImageExpired",
			"the job's CompareImageBase64 expired before the job could run; submit the job again")
	}
	if err != nil {
		return deferFor(a.w.cfg.PausedDelay, "read image: %v", err)
	}
	p.Input.CompareImageBase64 = &img
	return nil
}

func (a applyAction) begin(ctx context.Context, p *tasks.ApplyPayload) (int, error) {
	return a.w.results.MarkRunning(ctx, p.JobID)
}

// route: any credential set serving the job's region.
func (applyAction) route(p *tasks.ApplyPayload) route { return route{region: p.Region} }

func (a applyAction) call(ctx context.Context, p *tasks.ApplyPayload, b *budget) (*faceid.ApplyWebVerificationBizTokenIntlResponseParams, error) {
	return b.Upstream.Apply(ctx, p.Region, &p.Input)
}

// succeed records the BizToken, and the account of b that minted it (its result is
// fetched with that account), and runs the follow-ups.
func (a applyAction) succeed(ctx context.Context, p *tasks.ApplyPayload, b *budget, resp *faceid.ApplyWebVerificationBizTokenIntlResponseParams, log zerolog.Logger) error {
	f := results.Final{Status: tasks.StatusSucceeded, ExpiresAt: a.w.cfg.Now().Add(a.w.cfg.TokenValidity),
		Account: b.Account, AccountMasked: b.Masked}
	if resp != nil {
		f.BizToken = deref(resp.BizToken)
		f.VerificationURL = deref(resp.VerificationURL)
		f.RequestID = deref(resp.RequestId)
	}
	return a.finish(ctx, p, log.With().Str("request_id", f.RequestID).Logger(), f)
}

// fail records a failure and runs the follow-ups. The task is not retried.
func (a applyAction) fail(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger, code, message string) error {
	if err := a.finish(ctx, p, log, results.Final{Status: tasks.StatusFailed, ErrorCode: code, ErrorMessage: message}); err != nil {
		return err
	}
	return fmt.Errorf("job failed with %s: %w", code, asynq.SkipRetry)
}

// expire records that the job missed its deadline (no call was made) and runs the
// follow-ups: its image is released and its token.expired webhook enqueued.
func (a applyAction) expire(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	changed, err := a.w.results.Expire(wctx, p.JobID, fmt.Sprintf(
		"the job did not reach the upstream within its MaxWait (deadline %s); no call was made", tasks.FormatTime(p.Deadline)))
	if errors.Is(err, results.ErrNotFound) {
		return nil
	}
	if err != nil {
		return deferFor(a.w.cfg.PausedDelay, "record expiry: %v", err)
	}
	if changed {
		a.w.cfg.Metrics.ObserveFinished(string(tasks.StatusExpired), string(p.Priority), a.w.cfg.Now().Sub(p.CreatedAt))
		log.Warn().Str("code", results.CodeDeadlineExceeded).Str("status", string(tasks.StatusExpired)).Msg("job final")
	}
	if p.ImageRef != "" {
		if err := a.w.images.Release(wctx, p.ImageRef); err != nil {
			log.Warn().Err(err).Msg("could not release the job's image; its TTL will delete it")
		}
	}
	if a.w.cfg.Webhooks != nil {
		a.w.enqueueWebhook(wctx, p.JobID, "webhook", a.w.cfg.Webhooks.TaskFor, log)
	}
	return nil
}

func (a applyAction) retrying(ctx context.Context, p *tasks.ApplyPayload, code, message string) {
	_ = a.w.results.MarkRetrying(ctx, p.JobID, code, message)
}

func (a applyAction) finish(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger, f results.Final) error {
	// The result must be written even if the task's context is ending: the upstream
	// call was made and its outcome must not be lost.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	changed, err := a.w.results.Finish(wctx, p.JobID, f)
	if err != nil && !errors.Is(err, results.ErrNotFound) {
		// Leave the task to be retried: the next run finds the job not final and
		// calls again, which is the at-least-once price of a Redis outage here.
		return fmt.Errorf("record result of %s: %w", p.JobID, err)
	}
	if changed {
		a.w.cfg.Metrics.ObserveFinished(string(f.Status), string(p.Priority), a.w.cfg.Now().Sub(p.CreatedAt))
		ev := log.Info()
		if f.Status != tasks.StatusSucceeded {
			ev = log.Warn().Str("code", f.ErrorCode)
		}
		ev.Str("status", string(f.Status)).Msg("job final")
	}
	a.finished(wctx, p, log)
	return nil
}

// finished releases the job's image and enqueues its webhook. Both are idempotent,
// so a duplicate run repeats them safely.
func (a applyAction) finished(ctx context.Context, p *tasks.ApplyPayload, log zerolog.Logger) {
	w := a.w
	if p.FetchResult {
		w.scheduleSweep(ctx, p.JobID, log)
	}
	if p.ImageRef != "" {
		if err := w.images.Release(ctx, p.ImageRef); err != nil {
			log.Warn().Err(err).Msg("could not release the job's image; its TTL will delete it")
		}
	}
	if w.cfg.Webhooks != nil {
		w.enqueueWebhook(ctx, p.JobID, "webhook", w.cfg.Webhooks.TaskFor, log)
	}
}
