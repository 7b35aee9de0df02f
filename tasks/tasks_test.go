package tasks

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/internal/faceid"
)

func ptr[T any](v T) *T { return &v }

func TestTokenRequestValidate(t *testing.T) {
	ok := "https://example.com/done"
	tests := []struct {
		name      string
		req       TokenRequest
		wantField string
	}{
		{"minimal", TokenRequest{RedirectURL: &ok}, ""},
		{"batch lane", TokenRequest{RedirectURL: &ok, Priority: PriorityBatch}, ""},
		{"all regions", TokenRequest{RedirectURL: &ok, Region: "sa-saopaulo"}, ""},
		{"missing redirect", TokenRequest{}, "RedirectURL"},
		{"bad region", TokenRequest{RedirectURL: &ok, Region: "ap-guangzhou"}, "Region"},
		{"bad priority", TokenRequest{RedirectURL: &ok, Priority: "urgent"}, "Priority"},
		{"long extra", TokenRequest{RedirectURL: &ok, Extra: ptr(strings.Repeat("é", 1001))}, "Extra"},
		{"bad config", TokenRequest{RedirectURL: &ok, Config: &faceid.WebVerificationConfigIntl{CheckMode: ptr(int64(9))}}, "Config.CheckMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *faceid.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("Validate = %v, want a FieldError on %s", err, tt.wantField)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewJobID()
		if !ValidID("j_", id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "j_", "j_ABC", "b_" + NewJobID()[2:], NewJobID() + "x", "j_../../etc/passwd0000000000"} {
		if ValidID("j_", bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	u := "https://example.com"
	p := &ApplyPayload{JobID: NewJobID(), Priority: PriorityBatch, Region: "ap-jakarta", ImageRef: "abc",
		Input: faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: &u}, CreatedAt: time.Unix(1, 0).UTC()}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeApplyPayload(b)
	if err != nil || got.JobID != p.JobID || *got.Input.RedirectURL != u || got.ImageRef != "abc" || got.Priority != PriorityBatch {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	img := "QUJD"
	p.Input.CompareImageBase64 = &img
	if _, err := p.Encode(); err == nil {
		t.Fatal("Encode accepted image bytes in the payload")
	}
}

func TestJobFromRecord(t *testing.T) {
	rec := map[string]string{
		FieldStatus: "failed", FieldErrorCode: "InvalidParameter", FieldErrorMessage: "RedirectURL: bad",
		FieldAttempts: "1", FieldCreatedAt: "2026-11-27T10:00:00.000Z", FieldFinishedAt: "2026-11-27T10:00:01.000Z",
	}
	j, err := JobFromRecord("j_x", rec)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != StatusFailed || !j.Status.Final() || j.Error == nil || j.Error.Code != "InvalidParameter" || j.Attempts != 1 || j.FinishedAt == nil {
		t.Fatalf("job = %+v", j)
	}
	if _, err := JobFromRecord("j_x", map[string]string{FieldStatus: "queued", FieldAttempts: "x"}); err == nil {
		t.Fatal("malformed Attempts accepted")
	}
	if _, err := JobFromRecord("j_x", nil); err == nil {
		t.Fatal("empty record accepted")
	}
}

func TestQueue(t *testing.T) {
	cases := []struct {
		typ  string
		prio Priority
		want string
	}{
		{TypeApplyToken, PriorityInteractive, QueueInteractive},
		{TypeApplyToken, PriorityBatch, QueueBatch},
		{TypeApplyToken, "", QueueInteractive},
		{TypeGetResult, PriorityInteractive, QueueVerifyInteractive},
		{TypeGetResult, PriorityBatch, QueueVerifyBatch},
		{"test:other", PriorityBatch, QueueBatch},
	}
	for _, c := range cases {
		if got := Queue(c.typ, c.prio); got != c.want {
			t.Errorf("Queue(%q, %q) = %q, want %q", c.typ, c.prio, got, c.want)
		}
	}
	// Every action's queues are token queues (paused, recovered, counted), each once.
	seen := map[string]bool{}
	for typ := range actionQueues {
		for _, q := range ActionQueues(typ) {
			if !slices.Contains(TokenQueues, q) || seen[q] {
				t.Errorf("queue %s of %s: in TokenQueues %v, seen before %v", q, typ, TokenQueues, seen[q])
			}
			seen[q] = true
		}
	}
	if len(seen) != len(TokenQueues) {
		t.Errorf("TokenQueues %v, the actions' queues %v", TokenQueues, seen)
	}
	for _, c := range []struct {
		task *asynq.Task
		want string
	}{
		{NewApplyTask(PriorityBatch, "j_x", nil, time.Second), QueueBatch},
		{must(NewGetTask(&GetPayload{JobID: "j_x", Priority: PriorityBatch, Trigger: TriggerNow}, time.Second)), QueueVerifyBatch},
		{must(NewGetTask(&GetPayload{JobID: "j_x", Trigger: TriggerReturn}, time.Second)), QueueVerifyInteractive},
	} {
		if q := queueOf(t, c.task); q != c.want {
			t.Errorf("%s task on %q, want %q", c.task.Type(), q, c.want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// queueOf enqueues task on a miniredis and returns the queue asynq put it on.
func queueOf(t *testing.T, task *asynq.Task) string {
	t.Helper()
	m := miniredis.RunT(t)
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: m.Addr()})
	defer c.Close()
	info, err := c.Enqueue(task)
	if err != nil {
		t.Fatal(err)
	}
	return info.Queue
}
