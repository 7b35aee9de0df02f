package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

func TestSwitch(t *testing.T) {
	ctx := context.Background()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	sw := New(rdb)
	w := NewWatcher(sw)

	changed, err := sw.Pause(ctx, "UnauthorizedOperation.Arrears")
	if err != nil || !changed {
		t.Fatalf("Pause = %v, %v", changed, err)
	}
	if changed, _ := sw.Pause(ctx, ReasonOperator); changed {
		t.Fatal("second Pause changed the switch")
	}
	st, _ := sw.State(ctx)
	if !st.Paused || st.Reason != "UnauthorizedOperation.Arrears" || st.Since == nil {
		t.Fatalf("state = %+v", st)
	}
	for _, q := range tasks.TokenQueues {
		if !m.Exists("asynq:{" + q + "}:paused") {
			t.Errorf("queue %s not paused in asynq", q)
		}
	}
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, r := w.Paused(); !p || r != "UnauthorizedOperation.Arrears" {
		t.Fatalf("watcher = %v %q", p, r)
	}

	if changed, err := sw.Resume(ctx); err != nil || !changed {
		t.Fatalf("Resume = %v, %v", changed, err)
	}
	for _, q := range tasks.TokenQueues {
		if m.Exists("asynq:{" + q + "}:paused") {
			t.Errorf("queue %s still paused", q)
		}
	}
	if changed, _ := sw.Resume(ctx); changed {
		t.Fatal("second Resume changed the switch")
	}

	t.Run("watcher follows events", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go w.Run(wctx, time.Hour) // no polling: the event or the first refresh must update it
		_, _ = sw.Pause(ctx, ReasonOperator)
		waittest.Until(t, 5*time.Second, "watcher sees the pause event", func() bool {
			p, _ := w.Paused()
			return p
		})
	})
}
