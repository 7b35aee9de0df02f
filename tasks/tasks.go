package tasks

import (
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task type names, noun:verb: one per upstream action, and the webhook delivery.
const (
	// TypeApplyToken calls ApplyWebVerificationBizTokenIntl for one job.
	TypeApplyToken = "faceid:apply_token"
	// TypeDeliverWebhook posts one final job to its callback URL.
	TypeDeliverWebhook = "webhook:deliver"
)

// Queue names (asynq queues). Each upstream action has one queue per lane, so that a
// backlog of one action never stands in front of another's tasks; Queue maps a task
// to its queue.
const (
	// QueueInteractive and QueueBatch hold the Apply tasks (TypeApplyToken).
	QueueInteractive = "interactive"
	QueueBatch       = "batch"
	// QueueVerifyInteractive and QueueVerifyBatch hold the Get tasks (TypeGetResult).
	QueueVerifyInteractive = "verify-interactive"
	QueueVerifyBatch       = "verify-batch"
	// QueueWebhooks holds the webhook deliveries.
	QueueWebhooks = "webhooks"
)

// actionQueues are the queues of each action's task type, by lane.
var actionQueues = map[string][2]string{
	TypeApplyToken: {QueueInteractive, QueueBatch},
	TypeGetResult:  {QueueVerifyInteractive, QueueVerifyBatch},
}

// TokenQueues are the queues that hold the tasks of every upstream action (each
// action's lanes, highest priority first): what pausing the pipeline pauses.
var TokenQueues = []string{QueueInteractive, QueueBatch, QueueVerifyInteractive, QueueVerifyBatch}

// Queue returns the asynq queue of a task of type typ (an action's task type) on
// lane prio. Every task of an action is enqueued through it.
func Queue(typ string, prio Priority) string {
	q := ActionQueues(typ)
	if prio == PriorityBatch {
		return q[1]
	}
	return q[0]
}

// ActionQueues returns the two queues of the action whose tasks have type typ,
// interactive first. A type that is no action's goes by the Apply queues.
func ActionQueues(typ string) []string {
	q, ok := actionQueues[typ]
	if !ok {
		q = actionQueues[TypeApplyToken]
	}
	return []string{q[0], q[1]}
}

// Priority is a job's lane. Interactive jobs (a person waiting on a page) are served
// before batch jobs (campaigns), both at dequeue and at the rate limiter.
type Priority string

// The two lanes.
const (
	PriorityInteractive Priority = "interactive"
	PriorityBatch       Priority = "batch"
)

// ParsePriority parses a lane name; the empty string means interactive.
func ParsePriority(s string) (Priority, error) {
	switch Priority(s) {
	case "", PriorityInteractive:
		return PriorityInteractive, nil
	case PriorityBatch:
		return PriorityBatch, nil
	}
	return "", fmt.Errorf("must be %q or %q, not %q", PriorityInteractive, PriorityBatch, s)
}

// Status is a job's state.
type Status string

// Job states. Succeeded, failed, canceled and expired are final.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusRetrying  Status = "retrying"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
	// StatusExpired: the job did not reach the upstream within its MaxWait; no call
	// was made for it.
	StatusExpired Status = "expired"
)

// Statuses lists every state in lifecycle order.
var Statuses = []Status{StatusQueued, StatusRunning, StatusRetrying, StatusSucceeded, StatusFailed, StatusCanceled, StatusExpired}

// Final reports whether no further change will happen to a job in state s.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled || s == StatusExpired
}

// AsynqMaxRetry is the retry limit producers give every action's task. It is a guard
// only: the worker spends its own retry budget, because asynq archives a task whose
// retry count is exhausted even when it is only deferred (rate limited, paused).
const AsynqMaxRetry = 10000

// NewApplyTask returns the asynq task of job jobID on the lane of prio, with the
// options every producer gives it: the JobId as task id (a second enqueue of the same
// job is refused with asynq.ErrTaskIDConflict), the AsynqMaxRetry guard, and timeout
// as the bound of one run.
func NewApplyTask(prio Priority, jobID string, payload []byte, timeout time.Duration) *asynq.Task {
	return NewTask(TypeApplyToken, prio, jobID, payload, timeout)
}

// NewTask returns an asynq task of type typ (an action's task type) on its queue of
// the lane of prio (Queue), with the options every producer gives it: id as task id
// (a second enqueue with the same id is refused with asynq.ErrTaskIDConflict while
// the first is queued), the AsynqMaxRetry guard, timeout as the bound of one run, and
// opts (e.g. asynq.ProcessIn).
func NewTask(typ string, prio Priority, id string, payload []byte, timeout time.Duration, opts ...asynq.Option) *asynq.Task {
	all := append([]asynq.Option{asynq.Queue(Queue(typ, prio)), asynq.TaskID(id),
		asynq.MaxRetry(AsynqMaxRetry), asynq.Timeout(timeout)}, opts...)
	return asynq.NewTask(typ, payload, all...)
}
