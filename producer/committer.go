package producer

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/backlog"
)

// Group commit of record writes.
//
// Every Submit writes its job record (and claims its Idempotency-Key) before it
// enqueues the task. Under load many Submits do that at the same moment; sending each
// write in its own round trip costs Redis and this process a read and a write system
// call per request, which on a small machine is most of the cost. committer gathers
// the writes that are waiting when a writer is free into one pipeline: one round trip
// for all of them, and no added delay when there is only one (a free writer takes the
// first write at once and only adds those already queued behind it). The reads of the
// answer's estimate go once per pipeline, after all of its writes (doReads).

// commitWriters is the number of pipelines in flight at once.
const commitWriters = 4

// commitMax is the most writes sent in one pipeline.
const commitMax = 128

// commitTimeout bounds one pipeline. Writes are not cancelled with their request's
// context: a write that was sent must be waited for, so that an undo sees its effect.
const commitTimeout = 5 * time.Second

type commit struct {
	queue func(pipe redis.Pipeliner)
	reads bool           // wants the backlog's reads, queued once after every commit
	out   *backlog.Reads // those reads, set when reads
	done  chan struct{}
}

type committer struct {
	rdb redis.UniversalClient
	bl  *backlog.Backlog // nil: no commit asks for reads
	in  chan *commit
	wg  sync.WaitGroup

	mu     sync.RWMutex // held for reading while sending on in
	closed bool
}

// newCommitter returns a committer on rdb; bl queues the reads doReads asks for.
func newCommitter(rdb redis.UniversalClient, bl *backlog.Backlog) *committer {
	c := &committer{rdb: rdb, bl: bl, in: make(chan *commit, commitWriters*commitMax)}
	c.wg.Add(commitWriters)
	for range commitWriters {
		go c.loop()
	}
	return c
}

// do queues its commands on a shared pipeline and returns once the pipeline ran.
// Each caller reads its own commands' results (a transport error is set on every
// command; another caller's failed command does not concern it). After close, it
// runs its own pipeline.
func (c *committer) do(queue func(pipe redis.Pipeliner)) {
	c.send(&commit{queue: queue, done: make(chan struct{})})
}

// doReads is do for a write that also needs the backlog's reads after it
// (backlog.ReadCmds): one set of reads, queued after every write of the pipeline, serves
// all the writes that ask for them, instead of four commands each.
func (c *committer) doReads(queue func(pipe redis.Pipeliner)) *backlog.Reads {
	cm := &commit{queue: queue, reads: true, done: make(chan struct{})}
	c.send(cm)
	return cm.out
}

func (c *committer) send(cm *commit) {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		c.run([]*commit{cm})
		return
	}
	c.in <- cm
	c.mu.RUnlock()
	<-cm.done
}

// close stops the writers once the writes queued so far are sent.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.in)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *committer) loop() {
	defer c.wg.Done()
	batch := make([]*commit, 0, commitMax)
	for first := range c.in {
		batch = append(batch[:0], first)
	gather:
		for len(batch) < commitMax {
			select {
			case cm, ok := <-c.in:
				if !ok {
					break gather
				}
				batch = append(batch, cm)
			default:
				break gather
			}
		}
		c.run(batch)
	}
}

func (c *committer) run(batch []*commit) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	pipe := c.rdb.Pipeline()
	for _, cm := range batch {
		cm.queue(pipe)
	}
	var reads *backlog.Reads
	for _, cm := range batch {
		if cm.reads {
			if reads == nil {
				reads = c.bl.ReadCmds(ctx, pipe)
			}
			cm.out = reads
		}
	}
	_, _ = pipe.Exec(ctx) // results are read from each command
	for _, cm := range batch {
		close(cm.done)
	}
}
