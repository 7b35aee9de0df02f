// Package asynqwire writes asynq tasks on a Redis pipeline, so that a task can go
// out in the same round trip as the writes around it (a job's record): asynq's Client
// sends every task in a round trip of its own.
//
// It writes exactly what asynq v0.26's Client.Enqueue writes for a task with an id,
// a queue, a retry limit and a timeout, and no uniqueness, group, schedule or
// deadline: the task message (asynq's protobuf TaskMessage), the task hash
// (msg, state "pending", pending_since) and its id on the queue's pending list, with
// asynq's own enqueue script; and the queue's name in asynq's set of queues. Tests
// pin that layout against asynq itself (its Inspector reads such a task back, and
// its Server runs it): an asynq upgrade that changes it fails them.
package asynqwire

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// Task is one asynq task as asynqwire writes it.
type Task struct {
	// Type is the task type name. Required.
	Type string
	// Payload is the task's payload.
	Payload []byte
	// ID is the task id: a second task with the same id in the same queue is
	// refused while the first is kept (asynq.ErrTaskIDConflict). Required.
	ID string
	// Queue is the queue's name. Required.
	Queue string
	// MaxRetry is asynq's retry limit (asynq.MaxRetry).
	MaxRetry int
	// Timeout bounds one run (asynq.Timeout); whole seconds, at least one.
	Timeout time.Duration
}

// The fields of asynq's TaskMessage (asynq/internal/proto/asynq.proto) that a task
// written here sets.
const (
	fieldType    protowire.Number = 1
	fieldPayload protowire.Number = 2
	fieldID      protowire.Number = 3
	fieldQueue   protowire.Number = 4
	fieldRetry   protowire.Number = 5
	fieldTimeout protowire.Number = 8
)

// Message returns t's message as asynq stores it: a protobuf TaskMessage.
func Message(t Task) []byte {
	b := make([]byte, 0, len(t.Type)+len(t.Payload)+len(t.ID)+len(t.Queue)+24)
	b = appendString(b, fieldType, t.Type)
	if len(t.Payload) > 0 {
		b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Payload)
	}
	b = appendString(b, fieldID, t.ID)
	b = appendString(b, fieldQueue, t.Queue)
	if t.MaxRetry != 0 {
		b = protowire.AppendTag(b, fieldRetry, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(int32(t.MaxRetry))))
	}
	timeout := max(int64(t.Timeout/time.Second), 1)
	b = protowire.AppendTag(b, fieldTimeout, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(timeout))
}

func appendString(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// enqueueScript is asynq v0.26's enqueue script (internal/rdb.enqueueCmd), unchanged:
// KEYS[1] the task hash, KEYS[2] the pending list; ARGV[1] the message, ARGV[2] the
// id, ARGV[3] now in unix nanoseconds. 1: enqueued; 0: the id is taken.
const enqueueScript = `
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "pending",
           "pending_since", ARGV[3])
redis.call("LPUSH", KEYS[2], ARGV[2])
return 1
`

// allQueues is asynq's set of queue names (base.AllQueues).
const allQueues = "asynq:queues"

// TaskKey is the hash of task id of queue (base.TaskKey).
func TaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// PendingKey is the pending list of queue (base.PendingKey).
func PendingKey(queue string) string { return "asynq:{" + queue + "}:pending" }

// Writer queues tasks on pipelines. Its zero value is ready to use; it is safe for
// concurrent use.
type Writer struct {
	published sync.Map // queue name → *queueState once added to asynq's set of queues
}

// queueState is what a Writer keeps of a queue it published.
type queueState struct {
	pending any // PendingKey, as a command argument
}

// Enqueue queues on pipe the commands that enqueue t, as asynq's Client.Enqueue
// does; once the pipeline ran, the returned Result says what happened.
func (w *Writer) Enqueue(ctx context.Context, pipe redis.Pipeliner, t Task, now time.Time) *Result {
	r := &Result{w: w, queue: t.Queue}
	var q *queueState
	if v, ok := w.published.Load(t.Queue); ok {
		q = v.(*queueState)
	} else {
		// Idempotent; asynq's client does the same once per queue and process.
		r.publish = pipe.SAdd(ctx, allQueues, t.Queue)
		q = &queueState{pending: PendingKey(t.Queue)}
		w.published.Store(t.Queue, q)
	}
	// The script's EVAL, its arguments in one slice. EVAL, not EVALSHA: a pipeline
	// cannot fall back on NOSCRIPT, and Redis keeps the compiled script by its hash
	// either way.
	r.cmd = redis.NewCmd(ctx, "eval", enqueueScript, 2, TaskKey(t.Queue, t.ID), q.pending,
		Message(t), t.ID, now.UnixNano())
	r.cmd.SetFirstKeyPos(3)
	_ = pipe.Process(ctx, r.cmd)
	return r
}

// Result is an Enqueue whose pipeline has run.
type Result struct {
	w       *Writer
	queue   string
	publish *redis.IntCmd // nil when the queue was published before
	cmd     *redis.Cmd
}

// Enqueued reports whether the task was enqueued: false, nil when a task with its
// id was already in its queue (what asynq's client reports as
// asynq.ErrTaskIDConflict), or the command's error.
func (r *Result) Enqueued() (bool, error) {
	if r.publish != nil && r.publish.Err() != nil {
		r.w.published.Delete(r.queue) // the next task tries again
	}
	n, err := r.cmd.Int()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}
