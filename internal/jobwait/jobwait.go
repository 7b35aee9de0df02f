// Package jobwait waits for jobs to become final (or, with WaitUntil, for a condition
// on a job announced on keys.Done, such as a recorded verification). A Waiter holds the process's one
// subscription to keys.Done and fans its messages out to every waiting caller (the
// API's Prefer: wait, start links, the CLI's --wait and status).
//
// Invariant: a job that becomes final while a caller waits is never missed. A caller
// registers, waits until the subscription is confirmed, then reads the job: a job
// that finishes after the read wakes it, one that finished before is seen by the read.
// When the subscription is lost and comes back, every caller is woken to read again,
// since messages sent in between were lost.
package jobwait

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// ErrClosed is returned by Wait when the Waiter is closed while it waits.
var ErrClosed = errors.New("jobwait: closed")

// Config configures New.
type Config struct {
	// Redis carries the subscription. Required.
	Redis redis.UniversalClient
	// Results reads jobs. Defaults to results.New(Redis, results.Config{}).
	Results *results.Store
}

func (c Config) withDefaults() Config {
	if c.Results == nil && c.Redis != nil {
		c.Results = results.New(c.Redis, results.Config{})
	}
	return c
}

func (c Config) validate() error {
	if c.Redis == nil {
		return errors.New("jobwait: Config.Redis is required")
	}
	return nil
}

// Waiter waits for jobs to become final; safe for concurrent use. Close it when done.
type Waiter struct {
	results *results.Store
	hub     *hub
}

// New starts the subscription and returns the Waiter.
func New(cfg Config) (*Waiter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Waiter{results: cfg.Results, hub: newHub(cfg.Redis)}
	w.hub.start()
	return w, nil
}

// Close ends the subscription; callers still waiting return at once (ErrClosed) and
// later calls do not wait. Idempotent.
func (w *Waiter) Close() error {
	w.hub.stop()
	return nil
}

// Wait returns job jobID once it is final. When ctx ends first it returns the job as
// last read (nil if never read) and ctx.Err(); when the Waiter closes, ErrClosed. An
// error reading the job (results.ErrNotFound included) is returned as it is.
func (w *Waiter) Wait(ctx context.Context, jobID string) (*tasks.Job, error) {
	return w.waitUntil(ctx, jobID, isFinal)
}

func isFinal(j *tasks.Job) bool { return j.Status.Final() }

// waitUntil waits until cond holds for job jobID, read again on every message
// naming it on keys.Done.
func (w *Waiter) waitUntil(ctx context.Context, jobID string, cond func(*tasks.Job) bool) (*tasks.Job, error) {
	woken, unregister := w.hub.register(jobID)
	defer unregister()
	if err := w.hub.waitUp(ctx); err != nil {
		return nil, err
	}
	for {
		job, err := w.results.Get(ctx, jobID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if cond(job) {
			return job, nil
		}
		select {
		case <-woken:
		case <-ctx.Done():
			return job, ctx.Err()
		case <-w.hub.closing:
			return job, ErrClosed
		}
	}
}

// WaitFor waits up to d for job jobID to be final and returns it as it then stands:
// final, or read again once d ran out or the Waiter closed. Only ctx ending (its
// error) or a failed read is an error.
func (w *Waiter) WaitFor(ctx context.Context, jobID string, d time.Duration) (*tasks.Job, error) {
	return w.WaitUntil(ctx, jobID, d, isFinal)
}

// WaitUntil waits up to d for cond to hold for job jobID, and returns it as it then
// stands, as WaitFor does. cond is checked on the record read again each time
// jobID is published on keys.Done (its final state, or a fetch's answer).
func (w *Waiter) WaitUntil(ctx context.Context, jobID string, d time.Duration, cond func(*tasks.Job) bool) (*tasks.Job, error) {
	if d > 0 {
		wctx, cancel := context.WithTimeout(ctx, d)
		job, err := w.waitUntil(wctx, jobID, cond)
		cancel()
		if err == nil {
			return job, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrClosed) {
			return nil, err
		}
	}
	return w.results.Get(ctx, jobID)
}

// Stats returns the number of jobs waited on and of confirmed (re)subscriptions.
func (w *Waiter) Stats() (jobs, subs int) { return w.hub.stats() }

// hub is the subscription to keys.Done, fanned out to registered callers.
type hub struct {
	rdb redis.UniversalClient

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
	ready   chan struct{} // closed while subscribed
	up      bool
	subs    int // confirmed (re)subscriptions, for tests

	cancel context.CancelFunc
	done   chan struct{}
	ps     *redis.PubSub // guarded by mu; closed by stop to end a blocked receive
	closed bool          // guarded by mu

	closing chan struct{} // closed by stop: waiters answer at once
}

func newHub(rdb redis.UniversalClient) *hub {
	return &hub{rdb: rdb, waiters: map[string]map[chan struct{}]struct{}{}, ready: make(chan struct{}),
		closing: make(chan struct{})}
}

// start runs the subscription until stop.
func (h *hub) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.run(ctx)
	}()
}

// stop ends the subscription and waits for it.
func (h *hub) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.mu.Lock()
	if !h.closed {
		close(h.closing)
	}
	h.closed = true
	if h.ps != nil {
		_ = h.ps.Close() // unblocks a receive waiting on the network
	}
	h.mu.Unlock()
	<-h.done
}

// healthCheck is how long the subscription may stay silent before it is pinged.
const healthCheck = 30 * time.Second

func (h *hub) run(ctx context.Context) {
	ps := h.rdb.Subscribe(ctx, keys.Done)
	h.mu.Lock()
	h.ps = ps
	if h.closed {
		h.mu.Unlock()
		_ = ps.Close()
		return
	}
	h.mu.Unlock()
	defer ps.Close()
	retry := 50 * time.Millisecond
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthCheck)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isTimeout(err) {
				// Silence: ping, so that a dead connection shows up as an error.
				_ = ps.Ping(ctx)
				continue
			}
			h.setUp(false)
			// go-redis reconnects and subscribes again on the next receive.
			t := time.NewTimer(retry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			retry = min(2*retry, 2*time.Second)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				retry = 50 * time.Millisecond
				h.setUp(true)
			}
		case *redis.Message:
			h.wake(m.Payload)
		}
	}
}

func isTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}

// setUp records the subscription's state. Every confirmed (re)subscription wakes
// every waiter: messages may have been lost while it was down, even when the loss
// was noticed only inside go-redis (a failed ping).
func (h *hub) setUp(up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !up {
		if h.up {
			h.up = false
			h.ready = make(chan struct{})
		}
		return
	}
	if !h.up {
		h.up = true
		close(h.ready)
	}
	h.subs++
	for _, ws := range h.waiters {
		for ch := range ws {
			notify(ch)
		}
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// wake wakes the waiters of jobID.
func (h *hub) wake(jobID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.waiters[jobID] {
		notify(ch)
	}
}

// register adds a waiter for jobID; the channel receives a value whenever the job
// may have changed. Call the returned function when done waiting.
func (h *hub) register(jobID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	ws := h.waiters[jobID]
	if ws == nil {
		ws = map[chan struct{}]struct{}{}
		h.waiters[jobID] = ws
	}
	ws[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(ws, ch)
		if len(ws) == 0 { // ws is still h.waiters[jobID]: it held ch until now
			delete(h.waiters, jobID)
		}
		h.mu.Unlock()
	}
}

// waitUp waits until the subscription is confirmed: ctx.Err() when ctx ended
// first, ErrClosed when the hub stopped.
func (h *hub) waitUp(ctx context.Context) error {
	h.mu.Lock()
	ready := h.ready
	h.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-h.closing:
		return ErrClosed
	}
}

// stats returns the number of jobs waited on and of confirmed subscriptions.
func (h *hub) stats() (jobs, subs int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters), h.subs
}
