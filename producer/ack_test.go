package producer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
)

// TestAsynqTaskKey pins the asynq task key layout Ack checks (asynq v0.26 in go.mod):
// an asynq upgrade that moves it fails here.
func TestAsynqTaskKey(t *testing.T) {
	p, b := setup(t)
	j, _, err := p.Submit(context.Background(), &tasks.TokenRequest{RedirectURL: str("https://example.com/a")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.rdb.Exists(context.Background(), asynqTaskKey(tasks.QueueInteractive, j.JobId)).Val() != 1 {
		t.Fatalf("no %s after Submit: asynq's key layout changed", asynqTaskKey(tasks.QueueInteractive, j.JobId))
	}
}

// TestAckReplicas checks that with AckReplicas a Submit answers a ReplicationError
// when no replica confirms (a master without replicas), that Ack reports a write
// missing on the master as lost, and that without AckReplicas nothing waits.
func TestAckReplicas(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	ctx := context.Background()
	p, err := New(Config{Redis: rdb, AckReplicas: 1, AckTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	u := "https://example.com/a"
	_, _, err = p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u}, Options{IdempotencyKey: "k1"})
	var re *ReplicationError
	if !errors.As(err, &re) || !errors.Is(err, ErrNotReplicated) || re.Got != 0 || re.Want != 1 || re.Lost {
		t.Fatalf("Submit with no replica = %v, want a ReplicationError 0 of 1", err)
	}
	// The job stays, and a retry with the key finds it (and waits again).
	_, created, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u}, Options{IdempotencyKey: "k1"})
	if !errors.Is(err, ErrNotReplicated) || created {
		t.Fatalf("retry = created %v, %v; want the same job, not replicated", created, err)
	}
	if n := len(rdb.Keys(ctx, keys.Result("*")).Val()); n != 1 {
		t.Fatalf("%d job records, want 1", n)
	}
	err = p.Ack(ctx, Written{Key: keys.Result("j_gone")})
	if !errors.As(err, &re) || !re.Lost {
		t.Fatalf("Ack of a missing write = %v, want a lost ReplicationError", err)
	}
	err = p.Ack(ctx, Written{Key: keys.Pipeline, Field: "Paused", Value: "1"})
	if !errors.As(err, &re) || !re.Lost {
		t.Fatalf("Ack of a field that differs = %v, want a lost ReplicationError", err)
	}

	plain, err := New(Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	if _, _, err := plain.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u}, Options{}); err != nil {
		t.Fatalf("Submit without AckReplicas: %v", err)
	}
}
