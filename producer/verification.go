package producer

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

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
