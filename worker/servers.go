package worker

import (
	"slices"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/tasks"
)

// laneServer is the asynq server of one queue of one action (tasks.ActionQueues):
// each lane of each action has slots of its own (Config.Concurrency, or
// VerifyConcurrency for Get). An action never waits behind another's backlog, in its
// queues or for a slot; and an interactive task never waits for a slot held by a
// batch task waiting for its rate slot: the limiter, not the dequeue, puts the
// interactive lane first (it books further ahead, and takes the slot of a batch
// waiter that has not claimed it yet). Actions whose tasks share queues share servers.
type laneServer struct {
	queue string
	mux   *asynq.ServeMux
	srv   *asynq.Server
}

// serversFor returns the servers of the queues of task type typ, made with the slots
// of action on first use.
func (w *Worker) serversFor(typ, action string) []*laneServer {
	var out []*laneServer
	for _, q := range tasks.ActionQueues(typ) {
		i := slices.IndexFunc(w.servers, func(s *laneServer) bool { return s.queue == q })
		if i < 0 {
			poll := w.cfg.BackgroundPollInterval
			if q == tasks.QueueInteractive { // a person waits on a page for this job
				poll = w.cfg.PollInterval
			}
			s := &laneServer{queue: q, mux: asynq.NewServeMux()}
			s.srv = asynq.NewServerFromRedisClient(w.cfg.Redis, asynq.Config{
				Concurrency:              w.cfg.concurrency(action),
				Queues:                   map[string]int{q: 1},
				TaskCheckInterval:        poll,
				DelayedTaskCheckInterval: w.cfg.DelayedCheckInterval,
				RetryDelayFunc:           w.cfg.Backoff.retryDelay,
				IsFailure:                isFailure,
				ShutdownTimeout:          w.cfg.ShutdownTimeout,
				Logger:                   w.alog,
				LogLevel:                 asynq.WarnLevel,
			})
			w.servers = append(w.servers, s)
			i = len(w.servers) - 1
		}
		out = append(out, w.servers[i])
	}
	return out
}

// shutdownServers shuts servers down together, so that the whole takes at most one
// Config.ShutdownTimeout.
func (w *Worker) shutdownServers(servers []*laneServer) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(s.srv.Shutdown)
	}
	wg.Wait()
}
