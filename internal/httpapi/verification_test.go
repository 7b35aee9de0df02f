package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

func TestVerificationRoutes(t *testing.T) {
	const returnBase = "https://kyc.example.com"
	_, b := setup(t, func(c *Config) {
		p, err := producer.New(producer.Config{Redis: c.Redis, ReturnBase: returnBase})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		c.Producer, c.Tokens = p, []string{"secret-token-0123456789"}
	})
	auth := []string{"Authorization", "Bearer secret-token-0123456789"}
	ctx := context.Background()
	submit := func(t *testing.T, body string) *tasks.Job {
		r := b.do(t, "POST", "/v1/tokens", body, auth...)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST = %d %s", r.status, r.body)
		}
		return r.job(t)
	}
	queued := func(t *testing.T, id, trigger string) *asynq.TaskInfo {
		info, err := asynq.NewInspectorFromRedisClient(b.rdb).GetTaskInfo(tasks.Queue(tasks.TypeGetResult, tasks.PriorityInteractive), tasks.GetTaskID(id, trigger))
		if err != nil {
			t.Fatalf("no %s fetch queued for %s: %v", trigger, id, err)
		}
		return info
	}

	t.Run("FetchResult gives the upstream the return page", func(t *testing.T) {
		j := submit(t, `{"RedirectURL":"https://app.example.com/done?x=1","FetchResult":true}`)
		if !j.FetchResult {
			t.Fatalf("job %+v", j)
		}
		p, _, err := b.results.ApplyInput(ctx, j.JobId)
		if err != nil {
			t.Fatal(err)
		}
		if !p.FetchResult || *p.Input.RedirectURL != returnBase+"/v1/return/"+j.JobId {
			t.Fatalf("input %+v", p)
		}
	})

	t.Run("verification", func(t *testing.T) {
		j := submit(t, `{"RedirectURL":"https://app.example.com/done"}`)
		r := b.do(t, "POST", "/v1/tokens/"+j.JobId+"/verification", "", auth...)
		if r.status != http.StatusConflict || r.envelope(t).Error.Code != "FailedOperation.NoBizToken" {
			t.Fatalf("fetch before the token = %d %s", r.status, r.body)
		}
		b.finish(t, j.JobId)
		if r := b.do(t, "POST", "/v1/tokens/"+j.JobId+"/verification", ""); r.status != http.StatusUnauthorized {
			t.Fatalf("without a token = %d", r.status)
		}
		r = b.do(t, "POST", "/v1/tokens/"+j.JobId+"/verification", "", append(auth, "Prefer", "wait=1")...)
		got := r.job(t)
		if r.status != http.StatusAccepted || got.Verification == nil || got.Verification.Status != tasks.VerificationPending {
			t.Fatalf("fetch = %d %s", r.status, r.body)
		}
		if info := queued(t, j.JobId, tasks.TriggerNow); info.Type != tasks.TypeGetResult {
			t.Fatalf("task %+v", info)
		}
		if r := b.do(t, "POST", "/v1/tokens/"+tasks.NewJobID()+"/verification", "", auth...); r.status != http.StatusNotFound {
			t.Fatalf("unknown job = %d", r.status)
		}
	})

	t.Run("return page", func(t *testing.T) {
		j := submit(t, `{"RedirectURL":"https://app.example.com/done?x=1","FetchResult":true}`)
		b.finish(t, j.JobId)
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(b.srv.URL + "/v1/return/" + j.JobId + "?token=tok")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://app.example.com/done?token=tok&x=1" {
			t.Fatalf("return = %d %q", resp.StatusCode, loc)
		}
		queued(t, j.JobId, tasks.TriggerReturn)
		for _, id := range []string{tasks.NewJobID(), "not-a-job"} {
			resp, err := noFollow.Get(b.srv.URL + "/v1/return/" + id)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || strings.Contains(resp.Header.Get("Location"), "http") {
				t.Fatalf("return of %s = %d", id, resp.StatusCode)
			}
		}
	})
}
