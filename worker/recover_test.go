package worker

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
)

// TestRecoverPinsAsynqKeyLayout pins the part of asynq's private Redis layout that
// recover.go writes (asynq's Inspector can list orphaned tasks but cannot requeue an
// active one): a task that a real asynq server is running sits in the active list and
// the lease set (scored in unix seconds) with state "active" in its hash, and
// recoverOnce's move leaves a task asynq's own Inspector reads as pending. An asynq
// upgrade that changes any of it fails here.
func TestRecoverPinsAsynqKeyLayout(t *testing.T) {
	get, err := tasks.NewGetTask(&tasks.GetPayload{JobID: "j_pinnedlayout0000000000000000", Priority: tasks.PriorityBatch,
		Trigger: tasks.TriggerSweep}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, q, id string
		task        *asynq.Task
	}{
		{"apply", tasks.QueueInteractive, "j_pinnedlayout0000000000000000",
			asynq.NewTask("test:hold", nil, asynq.Queue(tasks.QueueInteractive), asynq.TaskID("j_pinnedlayout0000000000000000"))},
		// A crashed worker's Get task is found on its own queue too.
		{"get", tasks.QueueVerifyBatch, tasks.GetTaskID("j_pinnedlayout0000000000000000", tasks.TriggerSweep), get},
	} {
		t.Run(c.name, func(t *testing.T) { testRecoverLayout(t, c.q, c.id, c.task) })
	}
}

func testRecoverLayout(t *testing.T, q, id string, task *asynq.Task) {
	ctx := context.Background()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()

	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(task); err != nil {
		t.Fatal(err)
	}
	if got := rdb.LRange(ctx, asynqKey(q, "pending"), 0, -1).Val(); !slices.Equal(got, []string{id}) {
		t.Fatalf("%s = %v, want [%s]", asynqKey(q, "pending"), got, id)
	}

	started, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 1, Queues: map[string]int{q: 1}, TaskCheckInterval: 10 * time.Millisecond,
		ShutdownTimeout: time.Second, LogLevel: asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(task.Type(), func(ctx context.Context, _ *asynq.Task) error {
		if first.CompareAndSwap(false, true) {
			close(started)
			<-release
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	defer close(release)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("asynq never ran the task")
	}

	// What a running task looks like.
	if got := rdb.LRange(ctx, asynqKey(q, "active"), 0, -1).Val(); !slices.Equal(got, []string{id}) {
		t.Fatalf("%s = %v, want [%s]", asynqKey(q, "active"), got, id)
	}
	lease, err := rdb.ZScore(ctx, asynqKey(q, "lease"), id).Result()
	if now := float64(time.Now().Unix()); err != nil || lease < now || lease > now+60 {
		t.Fatalf("%s score of %s = %v (%v), want a unix time in seconds within a minute", asynqKey(q, "lease"), id, lease, err)
	}
	if st := rdb.HGet(ctx, asynqKey(q, "t:"+id), "state").Val(); st != "active" {
		t.Fatalf("%s state = %q, want active", asynqKey(q, "t:"+id), st)
	}

	// Its worker stops heartbeating: asynq itself calls the task orphaned once the
	// lease score is in the past.
	expired := float64(time.Now().Add(-time.Minute).Unix())
	rdb.ZAddXX(ctx, asynqKey(q, "lease"), redis.Z{Score: expired, Member: id})
	insp := asynq.NewInspectorFromRedisClient(rdb)
	active, err := insp.ListActiveTasks(q)
	if err != nil || len(active) != 1 || active[0].ID != id || !active[0].IsOrphaned {
		t.Fatalf("Inspector.ListActiveTasks = %+v, %v; want %s orphaned", active, err, id)
	}

	w, err := New(Config{Redis: rdb, Upstream: &fakeUpstream{}, Limiter: &freeLimiter{}})
	if err != nil {
		t.Fatal(err)
	}
	if n := w.recoverOnce(ctx); n != 1 {
		t.Fatalf("recovered %d tasks, want 1", n)
	}
	info, err := insp.GetTaskInfo(q, id)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("after recovery asynq reads %+v, %v; want pending", info, err)
	}
	if n, _ := insp.ListActiveTasks(q); len(n) != 0 {
		t.Fatalf("still active after recovery: %+v", n)
	}
}
