package worker

import (
	"sync"
	"time"

	"github.com/faceidq/faceidq/tasks"
)

// Under a backlog, the queue head holds the oldest jobs, those with the least time
// left before their deadline. A task that takes one and then waits behind the other
// tasks of its process for a slot lets it expire in the wait, and the next one too:
// the upstream's budget goes unused while jobs that could still be served in time
// wait further back. So a job whose wait for a slot, as this process sees it, is
// longer than the time it has left ends expired at once, and the task takes the next
// job, until it finds one that can make it.

// gaugeGrants is how many recent grants a slotGauge measures the grant rate over.
const gaugeGrants = 16

// gaugeFresh is how recent the oldest of those grants must be for a prediction.
const gaugeFresh = 5 * time.Second

// slotGauge predicts the slot wait of a task of one budget in this process, per lane:
// the tasks already waiting, over the rate at which the process was granted slots of
// that lane recently. Without enough recent grants it predicts nothing.
type slotGauge struct {
	mu    sync.Mutex
	lanes [2]gaugeLane
}

type gaugeLane struct {
	waiting int
	grants  [gaugeGrants]time.Time // a ring of the last grant times
	next    int
}

func laneIndex(p tasks.Priority) int {
	if p == tasks.PriorityBatch {
		return 1
	}
	return 0
}

// enter counts a task starting to wait in lane and returns its predicted wait (0:
// unknown or none).
func (g *slotGauge) enter(lane tasks.Priority, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := &g.lanes[laneIndex(lane)]
	ahead := l.waiting
	l.waiting++
	oldest, newest := l.grants[l.next], l.grants[(l.next+gaugeGrants-1)%gaugeGrants]
	if ahead == 0 || oldest.IsZero() || now.Sub(oldest) > gaugeFresh || !newest.After(oldest) {
		return 0
	}
	perGrant := newest.Sub(oldest) / (gaugeGrants - 1)
	return time.Duration(ahead) * perGrant
}

// leave counts a task done waiting in lane, granted a slot or not.
func (g *slotGauge) leave(lane tasks.Priority, granted bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := &g.lanes[laneIndex(lane)]
	l.waiting--
	if granted {
		l.grants[l.next] = now
		l.next = (l.next + 1) % gaugeGrants
	}
}
