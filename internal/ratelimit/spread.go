package ratelimit

import (
	"sync"
	"time"
)

// minSamples is how many observations a process needs before it reports its delay
// range to the shared state: the range of two or three samples says little.
const minSamples = 10

// window holds the last n observed delays of this process and their range.
type window struct {
	mu       sync.Mutex
	buf      []time.Duration
	next     int
	full     bool
	min, max time.Duration
}

func newWindow(n int) *window { return &window{buf: make([]time.Duration, n)} }

// add records one delay and recomputes the range (n is small: a few hundred).
func (w *window) add(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf[w.next] = d
	w.next++
	if w.next == len(w.buf) {
		w.next, w.full = 0, true
	}
	live := w.buf[:w.next]
	if w.full {
		live = w.buf
	}
	w.min, w.max = live[0], live[0]
	for _, v := range live[1:] {
		w.min, w.max = min(w.min, v), max(w.max, v)
	}
}

// bounds returns the smallest and largest delay in the window, and ok=false while it
// holds fewer than minSamples observations.
func (w *window) bounds() (lo, hi time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.next
	if w.full {
		n = len(w.buf)
	}
	if n < min(minSamples, len(w.buf)) {
		return 0, 0, false
	}
	return w.min, w.max, true
}
