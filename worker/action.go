package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/backlog"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/tasks"
)

// action is one upstream action the worker runs: the tasks of one type, paced by the
// budget of one (account, action, endpoint). The pipeline (pipeline.go) drives every
// task through the same steps and calls the action for what only it knows:
//
//	decode, validate  the task and its job's state: is there anything to call?
//	inputs            what the call needs that the task does not carry (an image)
//	budget            a slot of the action's limiter, in the job's lane (pipeline)
//	begin ‖ call      the attempt is recorded alongside the upstream call
//	classify          faceid.Classify sorts a failure (pipeline)
//	record            succeed, fail, retrying; finished for a job found final
//
// P is a decoded task, R the upstream's answer. Adding an action is one file that
// implements this interface, one line in actionsOf, its queues in tasks (tasks.Queue),
// and its codes' rows in the one code table (internal/faceid/errors.go).
type action[P, R any] interface {
	// taskType is the asynq task type the action runs (tasks.Type…).
	taskType() string
	// name is the upstream action (faceid.Action…): the budget is the limiter of
	// the account, this name and the endpoint.
	name() string

	// decode parses a task: its id and payload. An error drops the task
	// (asynq.SkipRetry).
	decode(taskID string, payload []byte) (P, job, error)
	// validate checks the job's state: false when there is nothing to call (the job
	// is gone, or final and its follow-ups done), or an error the handler returns.
	validate(ctx context.Context, p P, log zerolog.Logger) (bool, error)
	// inputs reads what the call needs that the payload does not carry. A non-nil
	// error is returned by the handler (a deferral, or fail's error).
	inputs(ctx context.Context, p P, log zerolog.Logger) error
	// begin records that an attempt starts and returns its number; it runs
	// alongside call. results.ErrFinal: the job's outcome is already written;
	// results.ErrNotFound: the job is gone.
	begin(ctx context.Context, p P) (int, error)
	// route is what chooses the job's credential set (budget.go); it is read after
	// validate.
	route(p P) route
	// call makes the upstream call with the credential set b.
	call(ctx context.Context, p P, b *budget) (R, error)

	// succeed records the answer of b's upstream as the job's outcome and runs its
	// follow-ups.
	succeed(ctx context.Context, p P, b *budget, r R, log zerolog.Logger) error
	// fail records a final failure and runs its follow-ups; its error ends the task.
	fail(ctx context.Context, p P, log zerolog.Logger, code, message string) error
	// retrying records that the job waits for another attempt after code.
	retrying(ctx context.Context, p P, code, message string)
	// finished runs the follow-ups of a job found final (a duplicate run); they
	// are idempotent.
	finished(ctx context.Context, p P, log zerolog.Logger)
}

// job is what the pipeline knows of a task, whatever its action.
type job struct {
	id        string
	lane      tasks.Priority
	batchID   string
	createdAt time.Time
	// deadline is when the job expires unless it has reached the upstream (zero: never).
	deadline time.Time
}

// expirer is an action whose jobs may carry a deadline (job.deadline).
type expirer[P any] interface {
	// expire records that the job missed its deadline and runs its follow-ups; no
	// call is made. Its error is returned by the handler.
	expire(ctx context.Context, p P, log zerolog.Logger) error
}

// actionsOf registers every action the worker runs, one line each.
func actionsOf(w *Worker) error {
	if err := register(w, applyAction{w}); err != nil {
		return err
	}
	return register(w, getAction{w})
}

// register gives action a its budget in every credential set (Budget.Limiters) and
// routes its task type to the pipeline, on the servers of its queues (servers.go).
func register[P, R any](w *Worker, a action[P, R]) error {
	for i, b := range w.budgets {
		lim, err := b.Limiters(a.name())
		if err != nil {
			return fmt.Errorf("worker: limiter of %s (credential set %d): %w", a.name(), i, err)
		}
		b.limiters[a.name()] = lim
	}
	bl, err := backlog.New(backlog.Config{Redis: w.cfg.Redis, Action: a.name()})
	if err != nil {
		return fmt.Errorf("worker: backlog of %s: %w", a.name(), err)
	}
	h := &handler[P, R]{w: w, a: a, m: w.cfg.Metrics.Action(a.name()), backlog: bl}
	for _, srv := range w.serversFor(a.taskType(), a.name()) {
		srv.mux.Handle(a.taskType(), h)
	}
	return nil
}

// handler runs the tasks of one action through the pipeline.
type handler[P, R any] struct {
	w *Worker
	a action[P, R]
	m *metrics.Action // the action's upstream and limiter metrics
	// backlog counts the jobs that leave the action's queues (Position, ETA).
	backlog *backlog.Backlog
	// gauge predicts this process's slot wait, to expire at once a job that cannot
	// make its deadline (slack.go).
	gauge slotGauge
}

var _ asynq.Handler = (*handler[int, int])(nil)

// enqueueWebhook reads job jobID and enqueues the webhook task build makes of it (what
// names it in log lines). A job without a URL has none; the task id makes a second
// enqueue of one event a no-op, so a duplicate run repeats this safely.
func (w *Worker) enqueueWebhook(ctx context.Context, jobID, what string, build func(*tasks.Job, ...asynq.Option) (*asynq.Task, error), log zerolog.Logger) {
	job, err := w.results.Get(ctx, jobID)
	if err != nil {
		log.Warn().Err(err).Msg("could not read the job for its " + what)
		return
	}
	t, err := build(job)
	if errors.Is(err, webhook.ErrNoURL) {
		return
	}
	if err != nil {
		log.Error().Err(err).Msg("could not build the " + what + " task")
		return
	}
	if _, err := w.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		log.Error().Err(err).Msg("could not enqueue the " + what)
	}
}
