package worker

import (
	"slices"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/tasks"
)

// actionServer is an asynq server over some of an action's queues (tasks.ActionQueues)
// with its own slots (Config.Concurrency, or VerifyConcurrency for Get) and its own
// dequeue, interactive strictly before batch when it serves both. An action never
// waits behind another's backlog, in its queues or for a slot.
//
// Apply's lanes have a server each (laneGroups): a batch backlog fills every slot of
// its server with tasks waiting for their rate slot, and an interactive task sharing
// those slots would wait for one of them to finish (about 10 ms of p95 behind a
// 5,000-job backlog) before it could even ask the limiter, which alone orders the
// lanes (interactive books further ahead, and takes the slot of a batch waiter that
// has not claimed it yet). Get's lanes share one server: nobody waits on a page for
// a fetch, and each server adds polling and background work that jitters the calls
// of a small machine.
type actionServer struct {
	queues []string // interactive first
	mux    *asynq.ServeMux
	srv    *asynq.Server
}

// laneGroups returns the queue sets of task type typ's servers. A queue has one server,
// whatever types it carries: Apply's queues (and any type routed to them) a server per
// lane, the others one per pair.
func laneGroups(typ string) [][]string {
	queues := tasks.ActionQueues(typ)
	if queues[0] == tasks.QueueInteractive {
		return [][]string{queues[:1], queues[1:]}
	}
	return [][]string{queues}
}

// serversFor returns the servers of the queues of task type typ, made with the slots
// of action on first use.
func (w *Worker) serversFor(typ, action string) []*actionServer {
	var out []*actionServer
	for _, queues := range laneGroups(typ) {
		out = append(out, w.serverOf(queues, action))
	}
	return out
}

// serverOf returns the server of queues (interactive first), made on first use.
func (w *Worker) serverOf(queues []string, action string) *actionServer {
	for _, s := range w.servers {
		if slices.Equal(s.queues, queues) {
			return s
		}
	}
	poll := w.cfg.BackgroundPollInterval
	if queues[0] == tasks.QueueInteractive { // a person waits on a page for these jobs
		poll = w.cfg.PollInterval
	}
	weights := map[string]int{}
	for i, q := range queues {
		weights[q] = len(queues) - i
	}
	s := &actionServer{queues: queues, mux: asynq.NewServeMux()}
	s.srv = asynq.NewServerFromRedisClient(w.cfg.Redis, asynq.Config{
		Concurrency:              w.cfg.concurrency(action),
		Queues:                   weights,
		StrictPriority:           true,
		TaskCheckInterval:        poll,
		DelayedTaskCheckInterval: w.cfg.DelayedCheckInterval,
		RetryDelayFunc:           w.cfg.Backoff.retryDelay,
		IsFailure:                isFailure,
		ShutdownTimeout:          w.cfg.ShutdownTimeout,
		Logger:                   w.alog,
		LogLevel:                 asynq.WarnLevel,
	})
	w.servers = append(w.servers, s)
	return s
}

// shutdownServers shuts servers down together, so that the whole takes at most one
// Config.ShutdownTimeout.
func (w *Worker) shutdownServers(servers []*actionServer) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(s.srv.Shutdown)
	}
	wg.Wait()
}
