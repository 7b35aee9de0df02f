package worker

import (
	"testing"
	"time"

	"github.com/faceidq/faceidq/tasks"
)

func TestSlotGauge(t *testing.T) {
	var g slotGauge
	now := time.Now()
	lane := tasks.PriorityInteractive
	if w := g.enter(lane, now); w != 0 {
		t.Fatalf("first waiter: predicted %v, want 0", w)
	}
	// 16 grants 100ms apart: one slot per 100ms here.
	for i := range gaugeGrants {
		g.leave(lane, true, now.Add(time.Duration(i)*100*time.Millisecond))
		g.enter(lane, now)
	}
	now = now.Add(gaugeGrants * 100 * time.Millisecond)
	for range 4 { // five waiting now
		g.enter(lane, now)
	}
	if w := g.enter(lane, now); w != 500*time.Millisecond {
		t.Errorf("with 5 ahead: predicted %v, want 500ms", w)
	}
	if w := g.enter(tasks.PriorityBatch, now); w != 0 {
		t.Errorf("another lane: predicted %v, want 0", w)
	}
	if w := g.enter(lane, now.Add(gaugeFresh+2*time.Second)); w != 0 {
		t.Errorf("stale grants: predicted %v, want 0", w)
	}
}
