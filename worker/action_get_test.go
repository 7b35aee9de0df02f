package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// getScripts holds the scripted Get answers by BizToken: a nil *getAnswer answers
// with ErrorCode null; after the script the last answer repeats.
var getScripts sync.Map // token → *getScript

type getAnswer struct {
	code *int64
	sim  float64
	err  error
}

type getScript struct {
	mu      sync.Mutex
	answers []getAnswer
	calls   int
}

func scriptGet(token string, answers ...getAnswer) *getScript {
	s := &getScript{answers: answers}
	getScripts.Store(token, s)
	return s
}

func (f *fakeUpstream) Get(ctx context.Context, region, token string) (*faceid.GetWebVerificationResultIntlResponseParams, error) {
	v, ok := getScripts.Load(token)
	if !ok {
		return nil, &faceid.APIError{Code: "InvalidParameterValue.BizTokenIllegal", Message: "Invalid BizToken.", RequestID: "rid-g"}
	}
	s := v.(*getScript)
	s.mu.Lock()
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	s.mu.Unlock()
	if a.err != nil {
		return nil, a.err
	}
	rid := "rid-get"
	r := &faceid.GetWebVerificationResultIntlResponseParams{ErrorCode: a.code, RequestId: &rid}
	if a.code != nil {
		ts := uint64(time.Now().UnixMilli())
		r.VerificationDetailList = []*faceid.VerificationDetail{{ErrorCode: a.code, Similarity: &a.sim, ReqTimestamp: &ts}}
		name := "SIMULATED"
		r.OCRResult = []*faceid.OCRResult{{CardInfo: &name}}
	}
	return r, nil
}

func code(n int64) *int64 { return &n }

// waitVerification waits for job id's Verification to reach status.
func (b *testBundle) waitVerification(t *testing.T, id string, status tasks.VerificationStatus) *tasks.Job {
	t.Helper()
	var j *tasks.Job
	waittest.UntilReason(t, 10*time.Second, "job "+id+": verification "+string(status), func() (bool, string) {
		var err error
		j, err = b.producer.Get(context.Background(), id)
		return err == nil && j.Verification != nil && j.Verification.Status == status, fmt.Sprintf("%+v %v", j, err)
	})
	return j
}

func TestGetAction(t *testing.T) {
	_, b := setup(t)
	ctx := context.Background()
	mintJob := func(t *testing.T, u string) string {
		id := b.submit(t, u, nil)
		if j := b.waitFinal(t, id); j.Status != tasks.StatusSucceeded {
			t.Fatalf("job %+v", j)
		}
		return id
	}

	for _, tc := range []struct {
		name    string
		answers []getAnswer
		trigger string
		want    tasks.VerificationStatus
		code    *int64
	}{
		{"passed", []getAnswer{{code: code(0), sim: 93.5}}, tasks.TriggerNow, tasks.VerificationPassed, code(0)},
		{"failed", []getAnswer{{code: code(1001), sim: 20}}, tasks.TriggerReturn, tasks.VerificationFailed, code(1001)},
		{"expired", []getAnswer{{err: apiErr("InvalidParameterValue.BizTokenExpired")}}, tasks.TriggerNow, tasks.VerificationExpired, nil},
		{"retried then passed", []getAnswer{{err: apiErr("InternalError")}, {code: code(0), sim: 80}}, tasks.TriggerNow, tasks.VerificationPassed, code(0)},
		{"sweep unfinished", []getAnswer{{}}, tasks.TriggerSweep, tasks.VerificationIncomplete, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := "https://example.com/get-" + strings.ReplaceAll(tc.name, " ", "-")
			id := mintJob(t, u)
			scriptGet("tok-"+u, tc.answers...)
			if err := b.producer.Fetch(ctx, id, tc.trigger, tasks.PriorityInteractive); err != nil {
				t.Fatal(err)
			}
			j := b.waitVerification(t, id, tc.want)
			v := j.Verification
			if (tc.code == nil) != (v.ErrorCode == nil) || (tc.code != nil && *tc.code != *v.ErrorCode) {
				t.Fatalf("verification %+v", v)
			}
			if tc.code != nil && (v.Similarity == nil || v.CompletedAt == nil || v.FetchedAt == nil || v.RequestId != "rid-get") {
				t.Fatalf("verification %+v", v)
			}
			if v.OCRResult != nil {
				t.Fatalf("OCR text kept without VerifyKeepOCR: %s", v.OCRResult)
			}
			rec := b.rdb.HGetAll(ctx, "faceidq:result:"+id).Val()
			if rec[tasks.FieldVerificationStatus] != string(tc.want) || rec[tasks.FieldVerificationFetchedAt] == "" {
				t.Fatalf("record %v", rec)
			}
		})
	}

	t.Run("pending then passed on the backoff", func(t *testing.T) {
		u := "https://example.com/get-pending"
		id := mintJob(t, u)
		s := scriptGet("tok-"+u, getAnswer{}, getAnswer{code: code(0), sim: 99})
		if err := b.producer.Fetch(ctx, id, tasks.TriggerReturn, tasks.PriorityInteractive); err != nil {
			t.Fatal(err)
		}
		b.waitVerification(t, id, tasks.VerificationPending)
		b.waitVerification(t, id, tasks.VerificationPassed)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.calls != 2 {
			t.Fatalf("calls = %d", s.calls)
		}
	})

	t.Run("no token", func(t *testing.T) {
		u := "https://example.com/get-failed-job"
		b.upstream.setScript(u, apiErr("InvalidParameter"))
		id := b.submit(t, u, nil)
		b.waitFinal(t, id)
		if err := b.producer.Fetch(ctx, id, tasks.TriggerNow, tasks.PriorityInteractive); err == nil {
			t.Fatal("fetch of a job without a token accepted")
		}
	})
}

// TestGetKeepOCR: OCR text is recorded only with Config.VerifyKeepOCR.
func TestGetKeepOCR(t *testing.T) {
	for _, keep := range []bool{false, true} {
		m := redistest.Mini(t)
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		w, err := New(Config{Redis: rdb, Upstream: &fakeUpstream{}, Limiter: &freeLimiter{}, VerifyKeepOCR: keep})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		id := tasks.NewJobID()
		if err := w.results.Create(ctx, results.NewRecord{JobID: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.results.Finish(ctx, id, results.Final{Status: tasks.StatusSucceeded, BizToken: "tok"}); err != nil {
			t.Fatal(err)
		}
		name := `{"Name":"CHAN TAI MAN"}`
		r := &faceid.GetWebVerificationResultIntlResponseParams{ErrorCode: code(0), OCRResult: []*faceid.OCRResult{{CardInfo: &name}}}
		task := &getTask{GetPayload: &tasks.GetPayload{JobID: id, Trigger: tasks.TriggerNow}, mintedAt: time.Now()}
		if err := (getAction{w}).succeed(ctx, task, nil, r, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
		j, err := w.results.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if kept := strings.Contains(string(j.Verification.OCRResult), "CHAN TAI MAN"); kept != keep || j.Verification.Status != tasks.VerificationPassed {
			t.Fatalf("keep %v: verification %+v", keep, j.Verification)
		}
		_ = rdb.Close()
	}
}
