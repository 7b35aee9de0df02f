// Package pipeline is the pipeline switch: when the upstream answers an account-level
// error (arrears, service not activated, bad credentials) every worker stops calling
// it, and no job is failed for it, until an operator (or, for a condition that clears
// by itself, a probe) resumes it.
//
// The switch is a Redis hash (keys.Pipeline) plus asynq's own queue pause on the
// token queues, so that paused workers do not even dequeue. Producers keep accepting
// jobs while it is paused: they wait in their queues. Changes are announced on
// keys.PipelineEvents so that every process learns of them at once; Watcher keeps a
// local copy for the worker's hot path.
package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// ReasonOperator is the reason recorded when a person paused the pipeline.
const ReasonOperator = "operator"

// State is the pipeline switch as the API shows it.
type State struct {
	Paused bool       `json:"Paused"`
	Reason string     `json:"Reason"`
	Since  *time.Time `json:"Since"`
}

// Switch pauses and resumes the pipeline.
type Switch struct {
	rdb    redis.UniversalClient
	insp   *asynq.Inspector
	queues []string
	now    func() time.Time
}

// New returns a Switch for the token queues (tasks.TokenQueues).
func New(rdb redis.UniversalClient) *Switch {
	return &Switch{rdb: rdb, insp: asynq.NewInspectorFromRedisClient(rdb), queues: tasks.TokenQueues, now: time.Now}
}

// pause sets the switch unless it is set already. KEYS[1] switch; ARGV reason, since,
// channel. Returns 1 when it changed.
var pause = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'Paused') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'Paused', '1', 'Reason', ARGV[1], 'Since', ARGV[2])
redis.call('PUBLISH', ARGV[3], 'paused')
return 1
`)

var resume = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'Paused') ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'Paused', '0', 'Reason', '', 'Since', ARGV[1])
redis.call('PUBLISH', ARGV[2], 'resumed')
return 1
`)

// Pause stops the pipeline for reason (an upstream code or ReasonOperator). It
// returns changed=false when it was paused already (the first reason is kept).
func (s *Switch) Pause(ctx context.Context, reason string) (changed bool, err error) {
	n, err := pause.Run(ctx, s.rdb, []string{keys.Pipeline}, reason, tasks.FormatTime(s.now()), keys.PipelineEvents).Int()
	if err != nil {
		return false, fmt.Errorf("pipeline: pause: %w", err)
	}
	// Pause the queues even when the switch was set already: a crash between the two
	// steps must not leave the switch on and the queues running.
	for _, q := range s.queues {
		if err := s.insp.PauseQueue(q); err != nil && !strings.Contains(err.Error(), "already paused") {
			return n == 1, fmt.Errorf("pipeline: pause queue %s: %w", q, err)
		}
	}
	return n == 1, nil
}

// Resume restarts the pipeline. It returns changed=false when it was not paused.
func (s *Switch) Resume(ctx context.Context) (changed bool, err error) {
	for _, q := range s.queues {
		if err := s.insp.UnpauseQueue(q); err != nil && !strings.Contains(err.Error(), "not paused") {
			return false, fmt.Errorf("pipeline: resume queue %s: %w", q, err)
		}
	}
	n, err := resume.Run(ctx, s.rdb, []string{keys.Pipeline}, tasks.FormatTime(s.now()), keys.PipelineEvents).Int()
	if err != nil {
		return false, fmt.Errorf("pipeline: resume: %w", err)
	}
	return n == 1, nil
}

// State returns the switch.
func (s *Switch) State(ctx context.Context) (State, error) {
	m, err := s.rdb.HGetAll(ctx, keys.Pipeline).Result()
	if err != nil {
		return State{}, fmt.Errorf("pipeline: state: %w", err)
	}
	st := State{Paused: m["Paused"] == "1", Reason: m["Reason"]}
	if since, err := time.Parse(time.RFC3339Nano, m["Since"]); err == nil && st.Paused {
		st.Since = &since
	}
	return st, nil
}

// Watcher keeps a local copy of the switch, refreshed by keys.PipelineEvents and by
// polling (so a missed message costs at most one poll interval).
type Watcher struct {
	sw     *Switch
	paused atomic.Bool
	reason atomic.Value // string
}

// NewWatcher returns a Watcher; call Run to keep it fresh.
func NewWatcher(sw *Switch) *Watcher {
	w := &Watcher{sw: sw}
	w.reason.Store("")
	return w
}

// Paused reports the last known state, without I/O.
func (w *Watcher) Paused() (bool, string) { return w.paused.Load(), w.reason.Load().(string) }

// Refresh reads the switch now.
func (w *Watcher) Refresh(ctx context.Context) error {
	st, err := w.sw.State(ctx)
	if err != nil {
		return err
	}
	w.paused.Store(st.Paused)
	w.reason.Store(st.Reason)
	return nil
}

// Run refreshes the copy on every event and every poll interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, poll time.Duration) {
	sub := w.sw.rdb.Subscribe(ctx, keys.PipelineEvents)
	defer sub.Close()
	events := sub.Channel()
	t := time.NewTicker(poll)
	defer t.Stop()
	_ = w.Refresh(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
		case <-t.C:
		}
		_ = w.Refresh(ctx)
	}
}
