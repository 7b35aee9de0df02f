package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// getAction fetches a person's verification result (GetWebVerificationResultIntl)
// for a job that got its BizToken: the tasks of type tasks.TypeGetResult, on the
// budget of that action. The answer is recorded as the job's Verification: ErrorCode
// 0 passed, another code failed, null pending (fetched again on a backoff until
// Config.VerifySweep after the mint) or incomplete (at or after it); the codes that
// end a token (faceid.TokenEnded) make it expired. A verification reaching a final
// state, or incomplete, is announced by a verification.completed webhook. The
// person's media never reach the worker: the client drops them while decoding.
type getAction struct{ w *Worker }

// getTask is a fetch with what it needs from the job's record.
type getTask struct {
	*tasks.GetPayload
	token, region string
	account       string // the account that minted the token (Budget.Account)
	mintedAt      time.Time
	status        tasks.VerificationStatus
}

var _ action[*getTask, *faceid.GetWebVerificationResultIntlResponseParams] = getAction{}

func (getAction) taskType() string { return tasks.TypeGetResult }
func (getAction) name() string     { return faceid.ActionGet }

func (getAction) decode(_ string, b []byte) (*getTask, job, error) {
	p, err := tasks.DecodeGetPayload(b)
	if err != nil {
		return nil, job{}, err
	}
	return &getTask{GetPayload: p}, job{id: p.JobID, lane: p.Priority, createdAt: p.CreatedAt}, nil
}

// validate reads the job's token, region and mint time; a job without a token is
// dropped, and a verification already final is fetched again only when asked now.
func (a getAction) validate(ctx context.Context, t *getTask, log zerolog.Logger) (bool, error) {
	f, err := a.w.results.Fields(ctx, t.JobID, tasks.FieldStatus, tasks.FieldBizToken, tasks.FieldRegion,
		tasks.FieldFinishedAt, tasks.FieldVerificationStatus, tasks.FieldAccountKey)
	switch {
	case errors.Is(err, results.ErrNotFound):
		log.Warn().Msg("job record is gone; dropping its fetch")
		return false, nil
	case err != nil:
		return false, deferFor(a.w.cfg.PausedDelay, "read job state: %v", err)
	case tasks.Status(f[0]) != tasks.StatusSucceeded || f[1] == "":
		log.Warn().Str("status", f[0]).Msg("job has no BizToken; dropping its fetch")
		return false, nil
	}
	t.token, t.region, t.status, t.account = f[1], f[2], tasks.VerificationStatus(f[4]), f[5]
	if ts, err := time.Parse(time.RFC3339Nano, f[3]); err == nil {
		t.mintedAt = ts
	}
	if t.status.Final() && t.Trigger != tasks.TriggerNow {
		return false, nil
	}
	return true, nil
}

func (getAction) inputs(context.Context, *getTask, zerolog.Logger) error { return nil }

func (a getAction) begin(ctx context.Context, t *getTask) (int, error) {
	return a.w.results.BeginFetch(ctx, t.JobID)
}

// route: the account that minted the token (any set for a record without one,
// minted before accounts were recorded).
func (getAction) route(t *getTask) route { return route{region: t.region, account: t.account} }

func (a getAction) call(ctx context.Context, t *getTask, b *budget) (*faceid.GetWebVerificationResultIntlResponseParams, error) {
	return b.Upstream.Get(ctx, t.region, t.token)
}

// sweepAt is when an unfinished verification stops being pending.
func (a getAction) sweepAt(t *getTask) time.Time { return t.mintedAt.Add(a.w.cfg.VerifySweep) }

func (a getAction) succeed(ctx context.Context, t *getTask, _ *budget, r *faceid.GetWebVerificationResultIntlResponseParams, log zerolog.Logger) error {
	now := a.w.cfg.Now()
	v := results.Verified{RequestID: deref(r.RequestId), ErrorMsg: deref(r.ErrorMsg), ErrorCode: r.ErrorCode, Similarity: r.Similarity()}
	switch {
	case r.ErrorCode == nil && (t.Trigger == tasks.TriggerSweep || !now.Before(a.sweepAt(t))):
		v.Status = tasks.VerificationIncomplete
	case r.ErrorCode == nil:
		v.Status = tasks.VerificationPending
	case *r.ErrorCode == 0:
		v.Status = tasks.VerificationPassed
	default:
		v.Status = tasks.VerificationFailed
	}
	if r.ErrorCode != nil {
		v.CompletedAt = completedAt(r, now)
	}
	if a.w.cfg.VerifyKeepOCR && len(r.OCRResult) > 0 {
		if b, err := json.Marshal(r.OCRResult); err == nil {
			v.OCR = string(b)
		}
	}
	if err := a.record(ctx, t, v, log); err != nil {
		return err
	}
	if v.Status == tasks.VerificationPending {
		return deferFor(a.refetchDelay(t, now), "verification pending")
	}
	return nil
}

// refetchDelay is the backoff of a pending verification: a quarter of the time
// since the mint, between 2 s and 5 min, and never past the sweep.
func (a getAction) refetchDelay(t *getTask, now time.Time) time.Duration {
	d := min(max(now.Sub(t.mintedAt)/4, 2*time.Second), 5*time.Minute)
	if left := a.sweepAt(t).Sub(now); left < d {
		d = max(left, 0)
	}
	return d
}

// completedAt is the time of the person's last attempt, else now.
func completedAt(r *faceid.GetWebVerificationResultIntlResponseParams, now time.Time) time.Time {
	for i := len(r.VerificationDetailList) - 1; i >= 0; i-- {
		if d := r.VerificationDetailList[i]; d != nil && d.ReqTimestamp != nil && *d.ReqTimestamp > 0 {
			return time.UnixMilli(int64(*d.ReqTimestamp)).UTC()
		}
	}
	return now
}

// record writes v and announces a verification that reached its end.
func (a getAction) record(ctx context.Context, t *getTask, v results.Verified, log zerolog.Logger) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	changed, err := a.w.results.RecordVerification(wctx, t.JobID, v)
	if errors.Is(err, results.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record verification of %s: %w", t.JobID, err)
	}
	if changed && v.Status != tasks.VerificationPending {
		log.Info().Str("verification", string(v.Status)).Msg("verification recorded")
		a.announce(wctx, t.JobID, log)
	}
	return nil
}

// announce enqueues the verification.completed webhook of job jobID.
func (a getAction) announce(ctx context.Context, jobID string, log zerolog.Logger) {
	if w := a.w; w.cfg.Webhooks != nil {
		w.enqueueWebhook(ctx, jobID, "verification webhook", w.cfg.Webhooks.VerificationTaskFor, log)
	}
}

// fail ends a fetch: a token-ending code makes the verification expired; another
// failure is recorded as the fetch's error and leaves the verification as it is.
func (a getAction) fail(ctx context.Context, t *getTask, log zerolog.Logger, code, message string) error {
	if faceid.TokenEnded(code) {
		if err := a.record(ctx, t, results.Verified{Status: tasks.VerificationExpired, ErrorMsg: message}, log); err != nil {
			return err
		}
		return fmt.Errorf("verification token ended (%s): %w", code, asynq.SkipRetry)
	}
	_ = a.w.results.RecordFetchError(context.WithoutCancel(ctx), t.JobID, code, message)
	log.Warn().Msg("verification fetch failed")
	return fmt.Errorf("verification fetch failed with %s: %w", code, asynq.SkipRetry)
}

func (a getAction) retrying(ctx context.Context, t *getTask, code, message string) {
	_ = a.w.results.RecordFetchError(ctx, t.JobID, code, message)
}

func (getAction) finished(context.Context, *getTask, zerolog.Logger) {}

// scheduleSweep, once a FetchResult job has its BizToken, keeps its record as long
// as the result can be fetched and enqueues the sweep fetch (batch lane) at
// Config.VerifySweep. Both are idempotent.
func (w *Worker) scheduleSweep(ctx context.Context, jobID string, log zerolog.Logger) {
	if err := w.results.AskFetch(ctx, jobID); err != nil {
		log.Warn().Err(err).Msg("could not mark the verification pending")
	}
	if err := w.results.KeepFor(ctx, jobID, w.cfg.VerifyWindow); err != nil {
		log.Warn().Err(err).Msg("could not extend the record of a FetchResult job")
	}
	t, err := tasks.NewGetTask(&tasks.GetPayload{JobID: jobID, Priority: tasks.PriorityBatch,
		Trigger: tasks.TriggerSweep, CreatedAt: w.cfg.Now().Add(w.cfg.VerifySweep)},
		w.cfg.CallTimeout+time.Minute, asynq.ProcessIn(w.cfg.VerifySweep))
	if err != nil {
		log.Error().Err(err).Msg("could not build the sweep fetch")
		return
	}
	if _, err := w.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		log.Error().Err(err).Msg("could not enqueue the sweep fetch")
	}
}
