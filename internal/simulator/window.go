package simulator

// window counts events in the sliding window (t-span, t] ending at the latest event.
// Events arrive in non-decreasing time order; equal times share one slot, so a frozen
// test clock does not grow the ring. Each add and evict is amortised O(1).
type window struct {
	span  int64
	slots []slot // ring, len a power of two
	head  int    // index of the oldest slot
	used  int    // slots in use
	total int    // events in the window
}

type slot struct {
	t int64
	n int
}

func newWindow(span int64) window { return window{span: span, slots: make([]slot, 64)} }

// advance drops the events at or before t-span: the window now ends at t.
func (w *window) advance(t int64) {
	cut := t - w.span
	mask := len(w.slots) - 1
	for w.used > 0 && w.slots[w.head].t <= cut {
		w.total -= w.slots[w.head].n
		w.head = (w.head + 1) & mask
		w.used--
	}
}

// add records one event at t, which must not be before the last event.
func (w *window) add(t int64) {
	mask := len(w.slots) - 1
	if w.used > 0 {
		last := &w.slots[(w.head+w.used-1)&mask]
		if last.t == t {
			last.n++
			w.total++
			return
		}
	}
	if w.used == len(w.slots) {
		grown := make([]slot, 2*len(w.slots))
		for i := range w.used {
			grown[i] = w.slots[(w.head+i)&mask]
		}
		w.slots, w.head, mask = grown, 0, len(grown)-1
	}
	w.slots[(w.head+w.used)&mask] = slot{t: t, n: 1}
	w.used++
	w.total++
}

// clear empties the window.
func (w *window) clear() { w.head, w.used, w.total = 0, 0, 0 }
