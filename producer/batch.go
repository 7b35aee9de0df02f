package producer

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Group commit of record writes.
//
// Every Submit writes its job record (and claims its Idempotency-Key) before it
// enqueues the task. Under load many Submits do that at the same moment; sending each
// write in its own round trip costs Redis and this process a read and a write system
// call per request, which on a small machine is most of the cost. committer gathers
// the writes that are waiting when a writer is free into one pipeline: one round trip
// for all of them, and no added delay when there is only one (a free writer takes the
// first write at once and only adds those already queued behind it).

// commitWriters is the number of pipelines in flight at once.
const commitWriters = 4

// commitMax is the most writes sent in one pipeline.
const commitMax = 128

// commitTimeout bounds one pipeline. Writes are not cancelled with their request's
// context: a write that was sent must be waited for, so that an undo sees its effect.
const commitTimeout = 5 * time.Second

type commit struct {
	queue func(pipe redis.Pipeliner)
	done  chan struct{}
}

type committer struct {
	rdb redis.UniversalClient
	in  chan *commit
}

func newCommitter(rdb redis.UniversalClient) *committer {
	c := &committer{rdb: rdb, in: make(chan *commit, commitWriters*commitMax)}
	for range commitWriters {
		go c.loop()
	}
	return c
}

// do queues its commands on a shared pipeline and returns once the pipeline ran.
// Each caller reads its own commands' results (a transport error is set on every
// command; another caller's failed command does not concern it).
func (c *committer) do(queue func(pipe redis.Pipeliner)) {
	cm := &commit{queue: queue, done: make(chan struct{})}
	c.in <- cm
	<-cm.done
}

func (c *committer) loop() {
	batch := make([]*commit, 0, commitMax)
	for first := range c.in {
		batch = append(batch[:0], first)
	gather:
		for len(batch) < commitMax {
			select {
			case cm := <-c.in:
				batch = append(batch, cm)
			default:
				break gather
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		pipe := c.rdb.Pipeline()
		for _, cm := range batch {
			cm.queue(pipe)
		}
		_, _ = pipe.Exec(ctx) // results are read from each command
		cancel()
		for _, cm := range batch {
			close(cm.done)
		}
	}
}
