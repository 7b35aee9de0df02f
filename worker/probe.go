package worker

import (
	"context"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/ratelimit"
)

// probeLoop keeps the pipeline gauge current (every second) and resumes a pipeline
// paused for a condition that clears by itself (UnauthorizedOperation.Activating) once
// one probe call, made every Config.ProbeInterval, gets past it. One worker probes at a
// time, across all processes, and the probe takes a rate slot like any call.
func (w *Worker) probeLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		paused, reason := w.watcher.Paused()
		w.cfg.Metrics.SetPaused(paused)
		if !paused || !faceid.SelfClearing(reason) || time.Since(last) < w.cfg.ProbeInterval {
			continue
		}
		last = time.Now()
		w.probe(ctx, reason)
	}
}

func (w *Worker) probe(ctx context.Context, reason string) {
	ok, err := w.cfg.Redis.SetNX(ctx, keys.ProbeLock, "1", w.cfg.ProbeInterval/2).Result()
	if err != nil || !ok {
		return
	}
	b := w.budgets[0]
	lim := b.limiters[faceid.Action]
	res, err := lim.WaitBefore(ctx, ratelimit.Interactive, time.Time{})
	if err != nil {
		return
	}
	callCtx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	defer cancel()
	redirect := w.cfg.ProbeRedirectURL
	_, err = b.Upstream.Apply(callCtx, w.cfg.DefaultRegion, &faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: &redirect})
	lim.Observe(res, time.Now())
	if err != nil && faceid.Classify(err) == faceid.Account {
		code, _, _ := describe(err)
		w.log.Warn().Str("code", code).Str("paused_for", reason).Msg("pipeline probe: the account is still not usable; staying paused")
		return
	}
	if changed, err := w.switch_.Resume(ctx); err == nil && changed {
		w.cfg.Metrics.SetPaused(false)
		w.log.Warn().Str("paused_for", reason).Msg("pipeline probe succeeded: pipeline resumed")
	}
}
