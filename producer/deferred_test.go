package producer

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/images"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

// TestClose checks that Close stops the goroutines New started, and that a Submit
// after Close still writes its job.
func TestClose(t *testing.T) {
	_, b := setup(t)
	before := runtime.NumGoroutine()
	p, err := New(Config{Redis: b.rdb})
	if err != nil {
		t.Fatal(err)
	}
	if runtime.NumGoroutine() < before+commitWriters {
		t.Fatalf("New started %d goroutines, want %d", runtime.NumGoroutine()-before, commitWriters)
	}
	p.Close()
	p.Close() // twice is fine
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before New", n, before)
	}
	if _, _, err := p.Submit(context.Background(), &tasks.TokenRequest{RedirectURL: str("https://example.com/a")}, Options{}); err != nil {
		t.Fatalf("Submit after Close: %v", err)
	}
}

// TestDeferred covers the campaign path: Validate as Submit validates, WriteDeferred
// writes a queued record without a task (its image left out of Redis), and Feed
// enqueues it once, storing the image then.
func TestDeferred(t *testing.T) {
	p, b := setup(t)
	ctx := context.Background()
	if _, err := p.Validate(ctx, &tasks.TokenRequest{RedirectURL: str("ftp://x")}); !errors.As(err, new(*faceid.FieldError)) {
		t.Fatalf("Validate of a bad URL = %v, want a FieldError", err)
	}
	if _, err := p.Validate(ctx, &tasks.TokenRequest{RedirectURL: str("https://example.com/a"), CallbackURL: "https://hook.example"}); !errors.As(err, new(*faceid.FieldError)) {
		t.Fatalf("Validate with webhooks off = %v, want a FieldError", err)
	}
	img := "data:image/png;base64,iVBORw0KGgo="
	d, err := p.Validate(ctx, &tasks.TokenRequest{RedirectURL: str("https://example.com/a"), CompareImageBase64: &img, Extra: str("row 1")})
	if err != nil {
		t.Fatal(err)
	}
	if d.Image() != "iVBORw0KGgo=" || d.Request().Region == "" {
		t.Fatalf("draft image %q region %q: want the data URI stripped and the default region", d.Image(), d.Request().Region)
	}
	id := tasks.NewJobID()
	pipe := b.rdb.Pipeline()
	if err := p.WriteDeferred(ctx, pipe, id, d, Options{BatchID: "b_1", RowKey: "r1"}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	j, err := p.Get(ctx, id)
	if err != nil || j.Status != tasks.StatusQueued || j.Priority != tasks.PriorityBatch || j.BatchId != "b_1" || j.RowKey != "r1" || j.Extra != "row 1" {
		t.Fatalf("deferred job = %+v, %v", j, err)
	}
	if n := b.pending(t, tasks.QueueBatch); n != 0 {
		t.Fatalf("%d tasks after WriteDeferred, want none", n)
	}
	ref := images.Ref(d.Image())
	if b.rdb.Exists(ctx, keys.Image(ref)).Val() != 0 {
		t.Fatal("a deferred image was stored at import")
	}
	rec, st, err := p.Results().ApplyInput(ctx, id)
	if err != nil || st != tasks.StatusQueued || rec.BatchID != "b_1" || rec.Priority != tasks.PriorityBatch || rec.ImageRef != "" {
		t.Fatalf("ApplyInput = %+v, %q, %v", rec, st, err)
	}
	for range 2 { // a second feed is a no-op
		if err := p.Feed(ctx, rec, d.Image()); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.pending(t, tasks.QueueBatch); n != 1 {
		t.Fatalf("%d tasks after Feed, want 1", n)
	}
	if b.rdb.Exists(ctx, keys.Image(ref)).Val() != 1 {
		t.Fatal("Feed did not store the image")
	}
	ti, err := b.insp.GetTaskInfo(tasks.QueueBatch, id)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := tasks.DecodeApplyTask(id, ti.Payload)
	if err != nil || pl.ImageRef != ref || pl.BatchID != "b_1" {
		t.Fatalf("fed payload %+v, %v; want image %s", pl, err, ref)
	}
}
