package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
)

// doneHub is the process's one subscription to keys.Done, fanned out to the requests
// waiting for a job (Prefer: wait). A waiter registers first, then waits until the
// subscription is confirmed, then reads the job: a job that finishes after the read
// wakes it, one that finished before is seen by the read. When the subscription is
// lost and comes back, every waiter is woken to read again, since messages sent in
// between were lost.
type doneHub struct {
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

func newDoneHub(rdb redis.UniversalClient) *doneHub {
	return &doneHub{rdb: rdb, waiters: map[string]map[chan struct{}]struct{}{}, ready: make(chan struct{}),
		closing: make(chan struct{})}
}

// start runs the subscription until stop.
func (h *doneHub) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.run(ctx)
	}()
}

// stop ends the subscription and waits for it.
func (h *doneHub) stop() {
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

func (h *doneHub) run(ctx context.Context) {
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
func (h *doneHub) setUp(up bool) {
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
func (h *doneHub) wake(jobID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.waiters[jobID] {
		notify(ch)
	}
}

// register adds a waiter for jobID; the channel receives a value whenever the job
// may have changed. Call the returned function when done waiting.
func (h *doneHub) register(jobID string) (<-chan struct{}, func()) {
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

// waitUp waits until the subscription is confirmed; false when ctx ended or the
// hub stopped first.
func (h *doneHub) waitUp(ctx context.Context) bool {
	h.mu.Lock()
	ready := h.ready
	h.mu.Unlock()
	select {
	case <-ready:
		return true
	case <-ctx.Done():
	case <-h.closing:
	}
	return false
}

// stats returns the number of jobs waited on and of confirmed subscriptions.
func (h *doneHub) stats() (jobs, subs int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters), h.subs
}
