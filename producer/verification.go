package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// Fetch enqueues a fetch of job jobID's verification result on lane prio, for
// trigger (tasks.TriggerNow, tasks.TriggerReturn), and marks its Verification
// pending. A fetch of the same trigger already queued is not repeated.
//
// Errors: results.ErrNotFound, results.ErrNoToken (the job has no BizToken), or a
// wrapped Redis error.
func (p *Producer) Fetch(ctx context.Context, jobID, trigger string, prio tasks.Priority) error {
	if err := p.results.AskFetch(ctx, jobID); err != nil {
		return err
	}
	t, err := tasks.NewGetTask(&tasks.GetPayload{JobID: jobID, Priority: prio, Trigger: trigger,
		CreatedAt: p.cfg.Now().UTC()}, p.cfg.TaskTimeout)
	if err != nil {
		return err
	}
	if _, err := p.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("producer: enqueue fetch of %s: %w", jobID, err)
	}
	return nil
}

// returnPage gives a FetchResult job faceidq's return page as the upstream's
// RedirectURL when Config.ReturnBase is set (the idempotency fingerprint uses the
// caller's RedirectURL, kept in returnURL, since the return page names the JobId).
func (p *Producer) returnPage(pr *prepared) {
	if !pr.payload.FetchResult || p.cfg.ReturnBase == "" || pr.payload.Input.RedirectURL == nil {
		return
	}
	pr.returnURL = *pr.payload.Input.RedirectURL
	ret := strings.TrimRight(p.cfg.ReturnBase, "/") + "/v1/return/" + pr.jobID
	pr.payload.Input.RedirectURL = &ret
}

// fetchResultCmd writes a FetchResult job's record fields with its creation.
func (p *Producer) fetchResultCmd(ctx context.Context, pipe redis.Pipeliner, pr *prepared) {
	if !pr.payload.FetchResult {
		return
	}
	fields := []any{tasks.FieldFetchResult, "1"}
	if pr.returnURL != "" {
		fields = append(fields, tasks.FieldReturnURL, pr.returnURL)
	}
	pipe.HSet(ctx, keys.Result(pr.jobID), fields...)
}
