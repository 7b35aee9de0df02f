package results

import (
	"context"
	"errors"
	"testing"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
)

func TestCancel(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		prepare    func(s *Store, id string) // from a queued job
		want       CancelOutcome
		wantStatus tasks.Status
	}{
		{"queued", func(*Store, string) {}, Canceled, tasks.StatusCanceled},
		{"retrying", func(s *Store, id string) {
			_, _ = s.MarkRunning(ctx, id)
			_ = s.MarkRetrying(ctx, id, "InternalError", "boom")
		}, Canceled, tasks.StatusCanceled},
		{"running", func(s *Store, id string) { _, _ = s.MarkRunning(ctx, id) }, Running, tasks.StatusRunning},
		{"succeeded", func(s *Store, id string) {
			_, _ = s.Finish(ctx, id, Final{Status: tasks.StatusSucceeded, BizToken: "t"})
		}, AlreadyFinal, tasks.StatusSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := setup(t)
			id := tasks.NewJobID()
			if err := s.Create(ctx, NewRecord{JobID: id, Priority: tasks.PriorityBatch, BatchID: "b_1"}); err != nil {
				t.Fatal(err)
			}
			tt.prepare(s, id)
			got, err := s.Cancel(ctx, id, "the campaign was canceled")
			if err != nil || got != tt.want {
				t.Fatalf("Cancel = %v, %v; want %v", got, err, tt.want)
			}
			j, err := s.Get(ctx, id)
			if err != nil || j.Status != tt.wantStatus {
				t.Fatalf("job after Cancel = %+v, %v; want %s", j, err, tt.wantStatus)
			}
			if tt.want == Canceled {
				if j.Error == nil || j.Error.Code != CodeCanceled || j.FinishedAt == nil {
					t.Errorf("canceled job %+v: want ErrorCode %s and FinishedAt", j, CodeCanceled)
				}
				if ttl := b.rdb.TTL(ctx, keys.Result(id)).Val(); ttl <= 0 {
					t.Errorf("canceled record TTL %v, want the result TTL", ttl)
				}
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		s, _ := setup(t)
		if _, err := s.Cancel(ctx, "j_missing", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Cancel of a missing job = %v, want ErrNotFound", err)
		}
	})
}
