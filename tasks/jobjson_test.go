package tasks

import (
	"encoding/json"
	"testing"
	"time"
)

// reflectJob is what Job.MarshalJSON writes, as encoding/json writes it from the
// struct: the reference of the hand-written encoder.
func reflectJob(j Job) ([]byte, error) {
	type plain Job
	if !j.Status.Final() {
		return json.Marshal(struct {
			plain
			ExpiresAt        *msTime `json:"ExpiresAt"`
			CreatedAt        msTime  `json:"CreatedAt"`
			FinishedAt       *msTime `json:"FinishedAt"`
			Deadline         *msTime `json:"Deadline,omitempty"`
			Position         int     `json:"Position"`
			EstimatedStartAt *msTime `json:"EstimatedStartAt"`
		}{plain(j), optMS(j.ExpiresAt), msTime(j.CreatedAt), optMS(j.FinishedAt), optMS(j.Deadline),
			j.Position, optMS(j.EstimatedStartAt)})
	}
	return json.Marshal(struct {
		plain
		ExpiresAt        *msTime `json:"ExpiresAt"`
		CreatedAt        msTime  `json:"CreatedAt"`
		FinishedAt       *msTime `json:"FinishedAt"`
		Deadline         *msTime `json:"Deadline,omitempty"`
		Position         *int    `json:"Position,omitempty"`
		EstimatedStartAt *msTime `json:"EstimatedStartAt,omitempty"`
	}{plain: plain(j), ExpiresAt: optMS(j.ExpiresAt), CreatedAt: msTime(j.CreatedAt),
		FinishedAt: optMS(j.FinishedAt), Deadline: optMS(j.Deadline)})
}

func TestJobMarshalJSON(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("x", 3600))
	code, sim := int64(-1), 0.5
	full := Job{
		JobId: "j_1", Status: StatusSucceeded, BizToken: "tok", VerificationURL: "https://v/?a=1&b=<2>",
		ExpiresAt: &at, Extra: "caf\u00e9 \"q\" \\ \n\t\x01 \u2028 \xff", RequestId: "req", Error: &JobError{Code: "C", Message: "<m>"},
		Attempts: 3, CreatedAt: at, FinishedAt: &at, BatchId: "b_1", RowKey: "row", Priority: PriorityBatch,
		Region: "ap-singapore", Account: "AKID…3f9a",
		Webhook:      &Webhook{URL: "https://h", Status: "retrying", Attempts: 2, LastError: "e", LastAt: &at},
		FetchResult:  true,
		Verification: &Verification{Status: VerificationPassed, ErrorCode: &code, Similarity: &sim, CompletedAt: &at, OCRResult: json.RawMessage(`{"A": 1}`)},
		Deadline:     &at, Position: 7, EstimatedStartAt: &at, Ticket: 9, Estimated: true,
	}
	queued := full
	queued.Status = StatusQueued
	tests := []struct {
		name string
		job  Job
	}{
		{"zero", Job{}},
		{"new", Job{JobId: "j_2", Status: StatusQueued, Extra: "user-1", CreatedAt: at, Priority: PriorityInteractive, Region: "ap-jakarta", Position: 4, EstimatedStartAt: &at}},
		{"paused", Job{JobId: "j_3", Status: StatusRunning, CreatedAt: at}},
		{"final", full},
		{"queued", queued},
		{"webhook", Job{JobId: "j_4", Status: StatusRetrying, Webhook: &Webhook{URL: "u", Status: "pending"}}},
		{"expired", Job{JobId: "j_5", Status: StatusExpired, Deadline: &at, Position: 2, EstimatedStartAt: &at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkJobJSON(t, tt.job)
		})
	}
}

func checkJobJSON(t *testing.T, j Job) {
	t.Helper()
	want, err := reflectJob(j)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("json.Marshal:\n got %s\nwant %s", got, want)
	}
	direct, err := j.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(direct) != string(want) {
		t.Fatalf("MarshalJSON:\n got %s\nwant %s", direct, want)
	}
}

func FuzzJobMarshalJSON(f *testing.F) {
	f.Add("j_1", "queued", "user-1", "C", "<&>", "ap-singapore", 3)
	f.Add("", "succeeded", "\u2028\xff\"\\", "", "\x00\x7f", "", -1)
	f.Fuzz(func(t *testing.T, id, status, extra, code, msg, region string, n int) {
		j := Job{JobId: id, Status: Status(status), Extra: extra, BizToken: msg, RequestId: code,
			Region: region, Attempts: n, Position: n, BatchId: extra, Account: msg}
		if code != "" {
			j.Error = &JobError{Code: code, Message: msg}
		}
		checkJobJSON(t, j)
	})
}

func TestApplyTaskJSON(t *testing.T) {
	for _, tt := range []applyTask{
		{CreatedMS: 1},
		{JobID: "j_1", Priority: PriorityBatch, BatchID: "b_1", ImageRef: "sha", CreatedMS: 1767225600000, DeadlineMS: 1767225660000},
		{BatchID: "<&>\u2028\xff", CreatedMS: -5},
		{ImageRef: "x", DeadlineMS: 3},
	} {
		checkApplyTaskJSON(t, tt)
	}
}

func checkApplyTaskJSON(t *testing.T, a applyTask) {
	t.Helper()
	want, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.appendJSON(nil); string(got) != string(want) {
		t.Fatalf("appendJSON:\n got %s\nwant %s", got, want)
	}
}

func FuzzApplyTaskJSON(f *testing.F) {
	f.Add("", "batch", "b_1", "", int64(1), int64(0))
	f.Fuzz(func(t *testing.T, id, prio, batch, image string, ms, d int64) {
		checkApplyTaskJSON(t, applyTask{JobID: id, Priority: Priority(prio), BatchID: batch, ImageRef: image, CreatedMS: ms, DeadlineMS: d})
	})
}

func TestAppendTime(t *testing.T) {
	for _, at := range []time.Time{
		{}, time.Unix(0, 0), time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -7200)),
		time.Date(9999, 1, 1, 0, 0, 0, 1e6, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(99, 5, 6, 7, 8, 9, 10e6, time.Local),
	} {
		checkAppendTime(t, at)
	}
}

func checkAppendTime(t *testing.T, at time.Time) {
	t.Helper()
	want := at.UTC().Format(TimeFormat)
	if got := string(appendTime(nil, at)); got != want {
		t.Fatalf("appendTime(%v) = %s, want %s", at, got, want)
	}
	if got := FormatTime(at); got != want {
		t.Fatalf("FormatTime(%v) = %s, want %s", at, got, want)
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1767225600), int64(123456789))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		checkAppendTime(t, time.Unix(sec, nsec))
	})
}
