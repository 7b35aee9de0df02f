package asynqwire_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/asynqwire"
	"github.com/faceidq/faceidq/internal/redistest"
)

func enqueue(t *testing.T, rdb redis.UniversalClient, w *asynqwire.Writer, tasks ...asynqwire.Task) []bool {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	rs := make([]*asynqwire.Result, len(tasks))
	for i, task := range tasks {
		rs[i] = w.Enqueue(ctx, pipe, task, time.Now())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	out := make([]bool, len(rs))
	for i, r := range rs {
		ok, err := r.Enqueued()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ok
	}
	return out
}

// TestAsynqReadsWhatItWrites pins the layout against asynq itself: its Inspector
// reads a task written here as the task asynq's Client would have written, and a
// second task with the same id is refused as asynq refuses it.
func TestAsynqReadsWhatItWrites(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Mini(t).Addr()})
	defer rdb.Close()
	var w asynqwire.Writer
	task := asynqwire.Task{Type: "token:apply", Payload: []byte(`{"JobId":"j_1"}`), ID: "j_1",
		Queue: "interactive", MaxRetry: 10000, Timeout: 45 * time.Second}
	other := asynqwire.Task{Type: "result:get", ID: "j_2", Queue: "batch", Timeout: 500 * time.Millisecond}
	if got := enqueue(t, rdb, &w, task, other, task); got[0] != true || got[1] != true || got[2] != false {
		t.Fatalf("Enqueued = %v, want [true true false] (the second j_1 is a conflict)", got)
	}

	ins := asynq.NewInspectorFromRedisClient(rdb)
	queues, err := ins.Queues()
	if err != nil {
		t.Fatal(err)
	}
	if len(queues) != 2 {
		t.Errorf("asynq's queues = %v, want interactive and batch", queues)
	}
	for _, want := range []asynqwire.Task{task, other} {
		info, err := ins.GetTaskInfo(want.Queue, want.ID)
		if err != nil {
			t.Fatalf("asynq cannot read task %s: %v", want.ID, err)
		}
		wantTimeout := max(want.Timeout.Truncate(time.Second), time.Second)
		if info.Type != want.Type || string(info.Payload) != string(want.Payload) || info.ID != want.ID ||
			info.Queue != want.Queue || info.MaxRetry != want.MaxRetry || info.Timeout != wantTimeout ||
			info.State != asynq.TaskStatePending || !info.Deadline.IsZero() {
			t.Errorf("asynq reads %+v, want %+v (timeout %v, pending, no deadline)", info, want, wantTimeout)
		}
	}
	// And asynq's client sees the id as taken, as it would its own task's.
	_, err = asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("token:apply", nil),
		asynq.Queue("interactive"), asynq.TaskID("j_1"))
	if err == nil || err.Error() != asynq.ErrTaskIDConflict.Error() {
		t.Errorf("asynq Enqueue of a taken id = %v, want ErrTaskIDConflict", err)
	}
}

// TestMessageMatchesAsynq compares the message with the one asynq's Client writes
// for the same task.
func TestMessageMatchesAsynq(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Mini(t).Addr()})
	defer rdb.Close()
	_, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("token:apply", []byte("payload")),
		asynq.Queue("batch"), asynq.TaskID("j_9"), asynq.MaxRetry(10000), asynq.Timeout(45*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := rdb.HGet(ctx, asynqwire.TaskKey("batch", "j_9"), "msg").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	ours := asynqwire.Message(asynqwire.Task{Type: "token:apply", Payload: []byte("payload"), ID: "j_9",
		Queue: "batch", MaxRetry: 10000, Timeout: 45 * time.Second})
	if string(ours) != string(theirs) {
		t.Errorf("message = %x\nasynq's = %x", ours, theirs)
	}
}

// TestAsynqRunsWhatItWrites: a real asynq server runs tasks written here, with
// their payloads.
func TestAsynqRunsWhatItWrites(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Mini(t).Addr()})
	defer rdb.Close()
	var w asynqwire.Writer
	const n = 20
	var tasks []asynqwire.Task
	for i := range n {
		id := "j_" + string(rune('a'+i))
		tasks = append(tasks, asynqwire.Task{Type: "test:run", Payload: []byte(id), ID: id, Queue: "q", Timeout: 5 * time.Second})
	}
	enqueue(t, rdb, &w, tasks...)

	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 4, Queues: map[string]int{"q": 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel, ShutdownTimeout: time.Second})
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:run", func(_ context.Context, task *asynq.Task) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(task.Payload())] = true
		if len(seen) == n {
			close(done)
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("asynq ran %d of %d tasks", len(seen), n)
	}
}
