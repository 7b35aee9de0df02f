package results

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
)

type testBundle struct {
	rdb *redis.Client
	now time.Time
}

func setup(t *testing.T) (*Store, *testBundle) {
	t.Helper()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	b := &testBundle{rdb: rdb, now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	return New(rdb, Config{TTL: time.Hour, Now: func() time.Time { return b.now }}), b
}

func TestStore(t *testing.T) {
	ctx := context.Background()

	t.Run("lifecycle to succeeded", func(t *testing.T) {
		s, b := setup(t)
		id := tasks.NewJobID()
		if err := s.Create(ctx, NewRecord{JobID: id, Priority: tasks.PriorityInteractive, Region: "ap-singapore", Extra: "x", BatchID: "b_1"}); err != nil {
			t.Fatal(err)
		}
		sub := b.rdb.Subscribe(ctx, keys.Done)
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := s.MarkRunning(ctx, id)
		if err != nil || n != 1 {
			t.Fatalf("MarkRunning = %d, %v; want 1", n, err)
		}
		if err := s.MarkRetrying(ctx, id, "InternalError", "boom"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.MarkRunning(ctx, id); n != 2 {
			t.Fatalf("second attempt = %d, want 2", n)
		}
		exp := b.now.Add(10 * time.Minute)
		changed, err := s.Finish(ctx, id, Final{Status: tasks.StatusSucceeded, BizToken: "tok", VerificationURL: "https://v/?token=tok", ExpiresAt: exp, RequestID: "rid"})
		if err != nil || !changed {
			t.Fatalf("Finish = %v, %v", changed, err)
		}
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil || msg.Payload != id {
			t.Fatalf("done message = %v, %v; want %s", msg, err, id)
		}
		j, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != tasks.StatusSucceeded || j.BizToken != "tok" || j.Attempts != 2 || j.Error != nil || j.Extra != "x" || j.BatchId != "b_1" {
			t.Fatalf("job = %+v", j)
		}
		if j.ExpiresAt == nil || !j.ExpiresAt.Equal(exp) || j.FinishedAt == nil {
			t.Fatalf("times = %v %v", j.ExpiresAt, j.FinishedAt)
		}
		if ttl := b.rdb.PTTL(ctx, keys.Result(id)).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("ttl = %v, want (0, 1h]", ttl)
		}
		rec := b.rdb.HGetAll(ctx, keys.Result(id)).Val()
		for _, f := range []string{"Status", "BizToken", "VerificationURL", "ExpiresAt", "Extra", "RequestId", "Attempts", "UpdatedAt"} {
			if rec[f] == "" {
				t.Errorf("public field %s missing from record", f)
			}
		}
	})

	t.Run("final is never overwritten", func(t *testing.T) {
		s, _ := setup(t)
		id := tasks.NewJobID()
		_ = s.Create(ctx, NewRecord{JobID: id})
		if _, err := s.Finish(ctx, id, Final{Status: tasks.StatusFailed, ErrorCode: "InvalidParameter", ErrorMessage: "bad"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkRunning(ctx, id); !errors.Is(err, ErrFinal) {
			t.Fatalf("MarkRunning on final = %v, want ErrFinal", err)
		}
		changed, err := s.Finish(ctx, id, Final{Status: tasks.StatusSucceeded, BizToken: "late"})
		if err != nil || changed {
			t.Fatalf("second Finish = %v, %v; want unchanged", changed, err)
		}
		j, _ := s.Get(ctx, id)
		if j.Status != tasks.StatusFailed || j.BizToken != "" || j.Error == nil || j.Error.Code != "InvalidParameter" {
			t.Fatalf("job = %+v", j)
		}
	})

	t.Run("reopen failed job", func(t *testing.T) {
		s, b := setup(t)
		id := tasks.NewJobID()
		_ = s.Create(ctx, NewRecord{JobID: id})
		_, _ = s.Finish(ctx, id, Final{Status: tasks.StatusFailed, ErrorCode: "InternalError"})
		ok, err := s.Reopen(ctx, id)
		if err != nil || !ok {
			t.Fatalf("Reopen = %v, %v", ok, err)
		}
		if ttl := b.rdb.PTTL(ctx, keys.Result(id)).Val(); ttl != -1 {
			t.Fatalf("reopened record ttl = %v, want none", ttl)
		}
		if st, _ := s.Status(ctx, id); st != tasks.StatusQueued {
			t.Fatalf("status = %s", st)
		}
	})

	t.Run("missing", func(t *testing.T) {
		s, _ := setup(t)
		if _, err := s.Get(ctx, "j_nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get = %v", err)
		}
		if _, err := s.MarkRunning(ctx, "j_nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("MarkRunning = %v", err)
		}
		if _, err := s.Finish(ctx, "j_nope", Final{Status: tasks.StatusFailed}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Finish = %v", err)
		}
		if err := s.RecordWebhook(ctx, "j_nope", tasks.Webhook{Status: "delivered"}); err != nil {
			t.Fatalf("RecordWebhook on missing = %v", err)
		}
	})

	t.Run("webhook state shows on job", func(t *testing.T) {
		s, _ := setup(t)
		id := tasks.NewJobID()
		_ = s.Create(ctx, NewRecord{JobID: id, CallbackURL: "https://hooks.example.com/x"})
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.RecordWebhook(ctx, id, tasks.Webhook{Status: "retrying", Attempts: 2, LastError: "HTTP 500", LastAt: &at}); err != nil {
			t.Fatal(err)
		}
		j, _ := s.Get(ctx, id)
		if j.Webhook == nil || j.Webhook.Status != "retrying" || j.Webhook.Attempts != 2 || j.Webhook.URL != "https://hooks.example.com/x" {
			t.Fatalf("webhook = %+v", j.Webhook)
		}
	})
}
