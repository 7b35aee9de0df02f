package backlog

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
)

func TestEstimate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &Backlog{cfg: Config{Rate: 20, Now: func() time.Time { return now }}}
	for _, tt := range []struct {
		name   string
		lane   tasks.Priority
		ticket int64
		n      [4]int64 // interactive tickets, served, batch tickets, served
		want   int
	}{
		{"first interactive job", tasks.PriorityInteractive, 1, [4]int64{1, 0, 0, 0}, 0},
		{"100 interactive ahead", tasks.PriorityInteractive, 101, [4]int64{200, 0, 0, 0}, 100},
		{"served past the ticket", tasks.PriorityInteractive, 5, [4]int64{10, 9, 0, 0}, 0},
		{"interactive ignores batch", tasks.PriorityInteractive, 3, [4]int64{3, 0, 500, 0}, 2},
		{"batch behind waiting interactive", tasks.PriorityBatch, 10, [4]int64{50, 40, 10, 0}, 10 + 9},
		{"new interactive job", tasks.PriorityInteractive, 0, [4]int64{50, 10, 99, 0}, 40},
		{"new batch job", tasks.PriorityBatch, 0, [4]int64{50, 10, 99, 9}, 40 + 90},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if e := b.estimate(tt.lane, tt.ticket, tt.n, false, 1); e.Position > 1 {
				t.Fatalf("Position %d beyond the 1 pending task", e.Position)
			}
			e := b.estimate(tt.lane, tt.ticket, tt.n, false, -1)
			if e.Position != tt.want {
				t.Fatalf("Position %d, want %d", e.Position, tt.want)
			}
			if want := now.Add(time.Duration(tt.want) * 50 * time.Millisecond); e.StartAt == nil || !e.StartAt.Equal(want) {
				t.Fatalf("StartAt %v, want %v", e.StartAt, want)
			}
			if e := b.estimate(tt.lane, tt.ticket, tt.n, true, -1); e.StartAt != nil || e.Position != tt.want {
				t.Fatalf("paused: %+v, want Position %d and no StartAt", e, tt.want)
			}
		})
	}
}

func TestCounters(t *testing.T) {
	ctx := context.Background()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	b, err := New(Config{Redis: rdb, Rate: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tk, err := b.Ticket(ctx, tasks.PriorityInteractive, "j_"+string(rune('a'+i)))
		if err != nil || tk != int64(i+1) {
			t.Fatalf("ticket %d, %v; want %d", tk, err, i+1)
		}
	}
	if got := rdb.HGet(ctx, keys.Result("j_c"), tasks.FieldTicket).Val(); got != "3" {
		t.Fatalf("record Ticket %q, want 3", got)
	}
	if err := b.Served(ctx, tasks.PriorityInteractive); err != nil {
		t.Fatal(err)
	}
	rdb.RPush(ctx, "asynq:{interactive}:pending", "a", "b", "c", "d", "e")
	job := &tasks.Job{JobId: "j_e", Status: tasks.StatusQueued, Priority: tasks.PriorityInteractive, Ticket: 5}
	if err := b.Fill(ctx, job); err != nil {
		t.Fatal(err)
	}
	if job.Position != 3 || job.EstimatedStartAt == nil {
		t.Fatalf("Position %d StartAt %v, want 3 and a time", job.Position, job.EstimatedStartAt)
	}
	if wait := time.Until(*job.EstimatedStartAt); wait < 250*time.Millisecond || wait > 350*time.Millisecond {
		t.Errorf("estimated wait %v, want about 300ms at 10/s", wait)
	}
	rdb.HSet(ctx, keys.Pipeline, "Paused", "1")
	if err := b.Fill(ctx, job); err != nil || job.EstimatedStartAt != nil {
		t.Fatalf("paused: StartAt %v (%v), want none", job.EstimatedStartAt, err)
	}
	final := &tasks.Job{Status: tasks.StatusSucceeded, Ticket: 5}
	if err := b.Fill(ctx, final); err != nil || final.Position != 0 || final.EstimatedStartAt != nil {
		t.Fatalf("a final job was estimated: %+v", final)
	}
}

// TestTicketsShareReads checks that the tickets of several jobs queued on one pipeline
// and one ReadCmds after them (as producer.Submit's group commit does) give each job its
// ticket, in its record, and the estimate Estimate gives it, on a real Redis and on the
// embedded one.
func TestTicketsShareReads(t *testing.T) {
	for name, rdb := range map[string]redis.UniversalClient{
		"real": redistest.Start(t, redistest.Options{}).Client(t),
		"mini": redis.NewClient(&redis.Options{Addr: redistest.Mini(t).Addr()}),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			b, err := New(Config{Redis: rdb, Rate: 10, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			rdb.RPush(ctx, "asynq:{interactive}:pending", "a", "b", "c")
			rdb.RPush(ctx, "asynq:{batch}:pending", "d")
			lanes := []tasks.Priority{tasks.PriorityInteractive, tasks.PriorityBatch, tasks.PriorityInteractive}
			pipe := rdb.Pipeline()
			cmds := make([]*redis.Cmd, len(lanes))
			for i, lane := range lanes {
				cmds[i] = b.TicketCmd(ctx, pipe, lane, "j_share"+string(rune('a'+i)))
			}
			reads := b.ReadCmds(ctx, pipe)
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) { // Paused is unset
				t.Fatal(err)
			}
			wantTicket := map[tasks.Priority]int64{}
			for i, lane := range lanes {
				jobID := "j_share" + string(rune('a'+i))
				tk, err := cmds[i].Int64()
				if err != nil {
					t.Fatal(err)
				}
				if wantTicket[lane]++; tk != wantTicket[lane] {
					t.Fatalf("%s: ticket %d, want %d", jobID, tk, wantTicket[lane])
				}
				if got := rdb.HGet(ctx, keys.Result(jobID), tasks.FieldTicket).Val(); got != fmt.Sprint(tk) {
					t.Fatalf("record Ticket %q, want %d", got, tk)
				}
				got, err := reads.Estimate(lane, tk)
				if err != nil {
					t.Fatal(err)
				}
				want, err := b.Estimate(ctx, lane, tk)
				if err != nil {
					t.Fatal(err)
				}
				if got.Position != want.Position || !got.StartAt.Equal(*want.StartAt) {
					t.Fatalf("%s: shared reads' estimate %d %v, Estimate %d %v", jobID, got.Position, got.StartAt, want.Position, want.StartAt)
				}
			}
		})
	}
}
