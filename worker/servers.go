package worker

import (
	"slices"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/tasks"
)

// actionServer is the asynq server of one action's queues (tasks.ActionQueues): its
// own slots (Config.Concurrency, or VerifyConcurrency for Get) and its own dequeue,
// interactive strictly before batch. An action never waits behind another's backlog,
// in its queues or for a slot. Actions whose tasks share queues share a server.
//
// The lanes of one action share its slots: a server per lane (tried) let an
// interactive task skip the wait for a slot held by a batch waiter, but lost jobs in
// the Sentinel failover test (TestSentinelFailover) for reasons not found yet.
type actionServer struct {
	queues []string // interactive first
	mux    *asynq.ServeMux
	srv    *asynq.Server
}

// serverFor returns the server of the queues of task type typ, made with the slots of
// action on first use.
func (w *Worker) serverFor(typ, action string) *actionServer {
	queues := tasks.ActionQueues(typ)
	for _, s := range w.servers {
		if slices.Equal(s.queues, queues) {
			return s
		}
	}
	poll := w.cfg.BackgroundPollInterval
	if queues[0] == tasks.QueueInteractive { // a person waits on a page for these jobs
		poll = w.cfg.PollInterval
	}
	s := &actionServer{queues: queues, mux: asynq.NewServeMux()}
	s.srv = asynq.NewServerFromRedisClient(w.cfg.Redis, asynq.Config{
		Concurrency:              w.cfg.concurrency(action),
		Queues:                   map[string]int{queues[0]: 2, queues[1]: 1},
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
