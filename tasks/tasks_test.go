package tasks

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
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
	u, rule, extra, mode := "https://example.com", "1", "row 7", int64(1)
	p := &ApplyPayload{JobID: NewJobID(), Priority: PriorityBatch, Region: "ap-jakarta", ImageRef: "abc", BatchID: NewBatchID(),
		CallbackURL: "https://hooks.example.com", FetchResult: true,
		Input: faceid.ApplyWebVerificationBizTokenIntlRequestParams{RedirectURL: &u, RuleId: &rule, Extra: &extra,
			Config: &faceid.WebVerificationConfigIntl{CheckMode: &mode}},
		CreatedAt: time.UnixMilli(1796303999458).UTC(), Deadline: time.UnixMilli(1796304029458).UTC()}

	t.Run("the task carries the ids only", func(t *testing.T) {
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), u) || strings.Contains(string(b), p.JobID) {
			t.Fatalf("task payload %s carries the input or the JobId", b)
		}
		got, err := DecodeApplyTask(p.JobID, b)
		if err != nil || got.JobID != p.JobID || got.ImageRef != "abc" || got.Priority != PriorityBatch ||
			got.BatchID != p.BatchID || !got.CreatedAt.Equal(p.CreatedAt) || !got.Deadline.Equal(p.Deadline) || got.Input.RedirectURL != nil {
			t.Fatalf("round trip = %+v, %v", got, err)
		}
		inter := &ApplyPayload{JobID: p.JobID, Priority: PriorityInteractive, CreatedAt: p.CreatedAt}
		b, _ = inter.Encode()
		if got, err := DecodeApplyTask(p.JobID, b); err != nil || got.Priority != PriorityInteractive {
			t.Fatalf("interactive round trip of %s = %+v, %v", b, got, err)
		}
		if _, err := DecodeApplyTask("", b); err == nil {
			t.Fatal("a task with no JobId was accepted")
		}
	})

	t.Run("the record keeps the input", func(t *testing.T) {
		in, err := p.InputFields()
		if err != nil {
			t.Fatal(err)
		}
		rec := map[string]string{FieldStatus: "queued", FieldPriority: "batch", FieldRegion: p.Region,
			FieldCreatedAt: strconv.FormatInt(CreatedAtValue(p.CreatedAt), 10), FieldBatchId: p.BatchID, FieldCallbackURL: p.CallbackURL,
			FieldFetchResult: "1", FieldExtra: extra, FieldDeadline: FormatTime(p.Deadline)}
		for i := 0; i < len(in); i += 2 {
			v := in[i+1].(string)
			if len(v) > 64 {
				t.Errorf("field %s is %d bytes: the record would leave listpack", in[i], len(v))
			}
			rec[in[i].(string)] = v
		}
		got, st, err := ApplyPayloadFromRecord(p.JobID, hmget(rec))
		if err != nil || st != StatusQueued || !reflect.DeepEqual(got, p) {
			t.Fatalf("from record = %+v, %q, %v; want %+v", got, st, err, p)
		}
		if got, st, err := ApplyPayloadFromRecord(p.JobID, hmget(nil)); got != nil || st != "" || err != nil {
			t.Fatalf("missing record = %+v, %q, %v", got, st, err)
		}
	})

	t.Run("a record and a task of the earlier form", func(t *testing.T) {
		legacy := `{"job_id":"` + p.JobID + `","priority":"interactive","region":"ap-singapore","input":{"RedirectURL":"https://example.com/r","Extra":"x"},"image_ref":"abc","created_at":"2026-12-03T13:15:33.581839677Z"}`
		got, err := DecodeApplyTask(p.JobID, []byte(legacy))
		if err != nil || got.JobID != p.JobID || *got.Input.RedirectURL != "https://example.com/r" || got.ImageRef != "abc" || got.Region != "ap-singapore" {
			t.Fatalf("earlier task = %+v, %v", got, err)
		}
		got, st, err := ApplyPayloadFromRecord(p.JobID, hmget(map[string]string{FieldStatus: "queued", FieldPayload: legacy}))
		if err != nil || st != StatusQueued || *got.Input.RedirectURL != "https://example.com/r" {
			t.Fatalf("earlier record = %+v, %v", got, err)
		}
	})

	img := "QUJD"
	p.Input.CompareImageBase64 = &img
	if _, err := p.Encode(); err == nil {
		t.Fatal("Encode accepted image bytes in the payload")
	}
}

// hmget answers an HMGET of ApplyRecordFields on rec.
func hmget(rec map[string]string) []any {
	vals := make([]any, len(ApplyRecordFields))
	for i, f := range ApplyRecordFields {
		if v, ok := rec[f]; ok {
			vals[i] = v
		}
	}
	return vals
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

func TestJobJSONPosition(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name string
		job  Job
		want []string
		not  []string
	}{
		{"queued with an estimate", Job{Status: StatusQueued, Position: 7, EstimatedStartAt: &at},
			[]string{`"Position":7`, `"EstimatedStartAt":"2026-01-02T03:04:05.000Z"`}, nil},
		{"queued while paused", Job{Status: StatusQueued}, []string{`"Position":0`, `"EstimatedStartAt":null`}, nil},
		{"final", Job{Status: StatusExpired, Position: 7, EstimatedStartAt: &at}, nil, []string{"Position", "EstimatedStartAt"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.job)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(string(b), n) {
					t.Errorf("%s has %s", b, n)
				}
			}
		})
	}
}
