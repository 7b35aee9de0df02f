package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/keys"
)

func TestPositionAndETA(t *testing.T) {
	_, b := setup(t, nil) // the producer's default backlog: 20/s
	body := `{"RedirectURL":"https://example.com/done","MaxWait":30}`
	var last answer
	for range 41 {
		last = b.do(t, http.MethodPost, "/v1/tokens", body)
		if last.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", last.status, last.body)
		}
	}
	j := last.job(t)
	if j.Position != 40 || j.EstimatedStartAt == nil || j.Deadline == nil {
		t.Fatalf("job %s: want Position 40, an EstimatedStartAt and a Deadline", last.body)
	}
	if wait := time.Until(*j.EstimatedStartAt); wait < time.Second || wait > 3*time.Second {
		t.Errorf("EstimatedStartAt in %v, want about 2s (40 jobs at 20/s)", wait)
	}
	if ra := last.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	if got := b.do(t, http.MethodGet, "/v1/tokens/"+j.JobId, ""); got.job(t).Position != 40 {
		t.Errorf("GET: %s, want Position 40", got.body)
	}
	// Ten jobs leave the queue: the last one moves up.
	b.rdb.IncrBy(t.Context(), keys.BacklogServed("ApplyWebVerificationBizTokenIntl", "interactive"), 10)
	if got := b.do(t, http.MethodGet, "/v1/tokens/"+j.JobId, ""); got.job(t).Position != 30 {
		t.Errorf("GET after 10 served: %s, want Position 30", got.body)
	}
	// Paused: no honest estimate.
	b.rdb.HSet(t.Context(), keys.Pipeline, "Paused", "1")
	got := b.do(t, http.MethodGet, "/v1/tokens/"+j.JobId, "")
	if !strings.Contains(string(got.body), `"EstimatedStartAt":null`) {
		t.Errorf("paused: %s, want EstimatedStartAt null", got.body)
	}
	// A final job carries neither.
	b.finish(t, j.JobId)
	got = b.do(t, http.MethodGet, "/v1/tokens/"+j.JobId, "")
	if strings.Contains(string(got.body), "Position") || strings.Contains(string(got.body), "EstimatedStartAt") {
		t.Errorf("final: %s carries an estimate", got.body)
	}
}

func TestAdmissionControl(t *testing.T) {
	_, b := setup(t, func(c *Config) { c.MaxInteractiveWait = 2 * time.Second })
	body := `{"RedirectURL":"https://example.com/done"}`
	// 20/s: 40 queued jobs put the next start 2 s away, then one more is too far.
	for i := range 41 {
		if a := b.do(t, http.MethodPost, "/v1/tokens", body); a.status != http.StatusAccepted {
			t.Fatalf("POST %d: %d %s", i, a.status, a.body)
		}
	}
	refused := b.do(t, http.MethodPost, "/v1/tokens", body)
	if refused.status != http.StatusServiceUnavailable || refused.envelope(t).Error.Code != CodeWaitTooLong {
		t.Fatalf("over the limit: %d %s, want 503 %s", refused.status, refused.body, CodeWaitTooLong)
	}
	if ra, err := strconv.Atoi(refused.header.Get("Retry-After")); err != nil || ra < 2 {
		t.Errorf("Retry-After %q, want the estimate (≥ 2)", refused.header.Get("Retry-After"))
	}
	if !strings.Contains(refused.envelope(t).Error.Message, "EstimatedStartAt") {
		t.Errorf("message %q does not name the estimate", refused.envelope(t).Error.Message)
	}
	if n := b.rdb.Get(t.Context(), keys.BacklogTickets("ApplyWebVerificationBizTokenIntl", "interactive")).Val(); n != "41" {
		t.Errorf("tickets %s: a refused job was enqueued", n)
	}
	// Batch jobs are not subject to it.
	if a := b.do(t, http.MethodPost, "/v1/tokens", `{"RedirectURL":"https://example.com/done","Priority":"batch"}`); a.status != http.StatusAccepted {
		t.Errorf("batch: %d %s", a.status, a.body)
	}
}
