package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/tasks"
	"github.com/hibiken/asynq"
)

func mustTask(t *testing.T, job *tasks.Job, url string) *asynq.Task {
	t.Helper()
	task, err := NewTask(job, url)
	if err != nil {
		t.Fatalf("NewTask: %v", err)
	}
	return task
}

func TestProcessTaskDeliversSignedEvent(t *testing.T) {
	oldS, newS := newSecretString(t), newSecretString(t)
	s, b := setup(t, func(_ *Config, b *testBundle) { b.secrets = []string{oldS, newS} })
	rc := newReceiver(t, []string{oldS}, status(http.StatusNoContent))
	rcNew := newReceiver(t, []string{newS}, status(http.StatusOK))
	job := finalJob(t)
	job.Webhook = &tasks.Webhook{URL: rc.srv.URL, Status: StatusPending}

	for _, r := range []*receiver{rc, rcNew} {
		if err := s.ProcessTask(context.Background(), mustTask(t, job, r.srv.URL+"/hooks?k=v")); err != nil {
			t.Fatalf("ProcessTask: %v", err)
		}
	}
	for name, r := range map[string]*receiver{"old secret": rc, "new secret": rcNew} {
		t.Run(name, func(t *testing.T) {
			got := r.deliveries()
			if len(got) != 1 {
				t.Fatalf("got %d deliveries, want 1", len(got))
			}
			d := got[0]
			if d.verifyErr != nil {
				t.Fatalf("independent verifier: %v", d.verifyErr)
			}
			if n := len(strings.Fields(d.header.Get("webhook-signature"))); n != 2 {
				t.Errorf("got %d signatures, want 2 during a rotation", n)
			}
			if id := d.header.Get("webhook-id"); !strings.HasPrefix(id, "msg_") {
				t.Errorf("webhook-id = %q", id)
			}
			if ct := d.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var ev struct {
				Type      string          `json:"type"`
				Timestamp string          `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(d.body, &ev); err != nil {
				t.Fatalf("body: %v", err)
			}
			if ev.Type != EventTokenSucceeded || ev.Timestamp != tasks.FormatTime(*job.FinishedAt) {
				t.Errorf("type, timestamp = %q, %q", ev.Type, ev.Timestamp)
			}
			var data tasks.Job
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			if data.JobId != job.JobId || data.BizToken != job.BizToken || data.Status != tasks.StatusSucceeded {
				t.Errorf("data = %+v", data)
			}
			if data.Webhook != nil || strings.Contains(string(ev.Data), "CompareImage") {
				t.Errorf("data carries delivery state or image fields: %s", ev.Data)
			}
		})
	}
	w := b.store.last(job.JobId)
	if w.Status != StatusDelivered || w.Attempts != 1 || w.LastError != "" || w.LastAt == nil {
		t.Errorf("recorded %+v, want delivered after 1 attempt", w)
	}
	if got := b.obs.list(); strings.Join(got, ",") != "success,success" {
		t.Errorf("outcomes %v", got)
	}
}

func TestProcessTaskOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		respond    func(int, http.ResponseWriter, *http.Request)
		wantStatus string
		outcome    string
		skipRetry  bool
		lastError  string
	}{
		{"200", status(200), StatusDelivered, OutcomeSuccess, false, ""},
		{"204", status(204), StatusDelivered, OutcomeSuccess, false, ""},
		{"299", status(299), StatusDelivered, OutcomeSuccess, false, ""},
		{"301 is a failure", func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
		}, StatusRetrying, OutcomeFailure, false, "HTTP 301"},
		{"400", status(400), StatusRetrying, OutcomeFailure, false, "HTTP 400"},
		{"500 with a body", func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(500)
			_, _ = w.Write([]byte("boom\n\x00 \x1b[31mred"))
		}, StatusRetrying, OutcomeFailure, false, "HTTP 500: boom [31mred"},
		{"410 stops retrying", status(410), StatusGone, OutcomeGone, true, "HTTP 410"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := setup(t, nil)
			rc := newReceiver(t, b.secrets, tt.respond)
			job := finalJob(t)
			err := s.ProcessTask(context.Background(), mustTask(t, job, rc.srv.URL))
			if tt.outcome == OutcomeSuccess {
				if err != nil {
					t.Fatalf("ProcessTask: %v", err)
				}
			} else if err == nil {
				t.Fatal("ProcessTask succeeded")
			}
			if got := errors.Is(err, asynq.SkipRetry); got != tt.skipRetry {
				t.Errorf("SkipRetry = %v, want %v (err %v)", got, tt.skipRetry, err)
			}
			w := b.store.last(job.JobId)
			if w.Status != tt.wantStatus || w.Attempts != 1 {
				t.Errorf("recorded %+v, want %s after 1 attempt", w, tt.wantStatus)
			}
			if !strings.HasPrefix(w.LastError, tt.lastError) || strings.ContainsAny(w.LastError, "\x00\x1b\n") {
				t.Errorf("LastError = %q, want prefix %q and no control characters", w.LastError, tt.lastError)
			}
			if got := b.obs.list(); len(got) != 1 || got[0] != tt.outcome {
				t.Errorf("outcomes %v, want [%s]", got, tt.outcome)
			}
			if n := b.mr.Exists(keys.WebhookDead); n {
				t.Error("a retryable outcome was recorded as exhausted")
			}
			if rc.count() != 1 {
				t.Errorf("receiver got %d requests", rc.count())
			}
		})
	}
}

func TestProcessTaskRefusesForbiddenDestinations(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"loopback not allow-listed", "http://127.0.0.2:1/"},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/"},
		{"private", "https://10.0.0.1/hook"},
		{"IPv6 loopback", "https://[::1]:1/"},
		{"name resolving to a private address", "https://internal.test/hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := setup(t, func(c *Config, _ *testBundle) {
				c.Policy.Resolver = mapResolver{"internal.test": addrs("192.168.1.10")}
			})
			job := finalJob(t)
			err := s.ProcessTask(context.Background(), mustTask(t, job, tt.url))
			if !errors.Is(err, ErrForbidden) || !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("err = %v, want ErrForbidden and SkipRetry", err)
			}
			if w := b.store.last(job.JobId); w.Status != StatusExhausted {
				t.Errorf("recorded %+v, want exhausted", w)
			}
			if got := b.obs.list(); len(got) != 1 || got[0] != OutcomeRefused {
				t.Errorf("outcomes %v, want [refused]", got)
			}
			ids, err := s.Exhausted(context.Background())
			if err != nil || len(ids) != 1 || ids[0] != job.JobId {
				t.Errorf("Exhausted = %v, %v; want [%s]", ids, err, job.JobId)
			}
			if strings.Contains(err2str(err), "/hook") {
				t.Errorf("error shows the URL path: %v", err)
			}
		})
	}
}

func err2str(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestProcessTaskReadsLimitedBody(t *testing.T) {
	s, b := setup(t, func(c *Config, _ *testBundle) { c.Timeout = 30 * time.Second })
	wrote := make(chan int64, 1)
	// The receiver streams an endless body: a sender that read it all would hang until
	// its 30 s timeout and report a transport error instead of the status.
	rc := newReceiver(t, b.secrets, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("x", 1024))
		var n int64
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				break
			}
			n += int64(len(chunk))
			w.(http.Flusher).Flush()
		}
		wrote <- n
	})
	job := finalJob(t)
	err := s.ProcessTask(context.Background(), mustTask(t, job, rc.srv.URL))
	var de *DeliveryError
	if !errors.As(err, &de) || de.StatusCode != http.StatusInternalServerError {
		t.Fatalf("err = %v, want an HTTP 500 DeliveryError", err)
	}
	if len(de.Body) > 210 || !strings.HasPrefix(de.Body, "xxxx") {
		t.Errorf("Body = %d bytes, want a short prefix of the response", len(de.Body))
	}
	if w := b.store.last(job.JobId); len(w.LastError) > 220 {
		t.Errorf("LastError is %d bytes", len(w.LastError))
	}
	select {
	case <-wrote: // the sender closed the connection
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver is still writing: the connection was not closed")
	}
}

func TestProcessTaskBadPayload(t *testing.T) {
	s, _ := setup(t, nil)
	for name, p := range map[string]string{
		"not JSON":    "{",
		"bad job id":  `{"id":"msg_a","job_id":"nope","type":"token.failed","url":"https://x.test/","body":{}}`,
		"bad type":    `{"id":"msg_a","job_id":"` + tasks.NewJobID() + `","type":"x","url":"https://x.test/","body":{}}`,
		"missing id":  `{"job_id":"` + tasks.NewJobID() + `","type":"token.failed","url":"https://x.test/","body":{}}`,
		"body absent": `{"id":"msg_a","job_id":"` + tasks.NewJobID() + `","type":"token.failed","url":"https://x.test/"}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := s.ProcessTask(context.Background(), asynq.NewTask(tasks.TypeDeliverWebhook, []byte(p)))
			if !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("err = %v, want SkipRetry", err)
			}
		})
	}
}

func TestProcessTaskRecordFailure(t *testing.T) {
	var handled []string
	s, b := setup(t, func(c *Config, _ *testBundle) {
		c.ErrorHandler = func(jobID string, err error) { handled = append(handled, jobID+": "+err.Error()) }
	})
	b.store.err = errors.New("redis down")
	t.Run("delivered anyway", func(t *testing.T) {
		rc := newReceiver(t, b.secrets, status(200))
		job := finalJob(t)
		if err := s.ProcessTask(context.Background(), mustTask(t, job, rc.srv.URL)); err != nil {
			t.Fatalf("a delivered webhook failed the task: %v", err)
		}
		if len(handled) != 1 || !strings.Contains(handled[0], "redis down") {
			t.Fatalf("ErrorHandler got %v", handled)
		}
	})
	t.Run("failure carries both errors", func(t *testing.T) {
		rc := newReceiver(t, b.secrets, status(500))
		err := s.ProcessTask(context.Background(), mustTask(t, finalJob(t), rc.srv.URL))
		if err == nil || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "redis down") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRetryDelay(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	s, b := setup(t, func(c *Config, _ *testBundle) { c.Now = func() time.Time { return now } })
	t.Run("schedule with jitter", func(t *testing.T) {
		for n, step := range DefaultSchedule {
			lo, hi := time.Duration(float64(step)*0.8), time.Duration(float64(step)*1.2)
			seen := map[time.Duration]bool{}
			for range 50 {
				d := s.RetryDelay(n, errors.New("HTTP 500"), nil)
				if d < lo || d > hi {
					t.Fatalf("retry %d: delay %v outside [%v, %v]", n+1, d, lo, hi)
				}
				seen[d] = true
			}
			if len(seen) < 2 {
				t.Errorf("retry %d: no jitter in 50 draws", n+1)
			}
		}
	})
	t.Run("beyond the schedule the last step repeats", func(t *testing.T) {
		if d := s.RetryDelay(100, nil, nil); d < 8*time.Hour || d > 12*time.Hour {
			t.Fatalf("delay %v", d)
		}
	})
	t.Run("no jitter when disabled", func(t *testing.T) {
		s2, _ := setup(t, func(c *Config, _ *testBundle) {
			c.Schedule = []time.Duration{time.Second, time.Minute}
			c.RandomizationFactor = -1
		})
		if d := s2.RetryDelay(1, nil, nil); d != time.Minute {
			t.Fatalf("delay %v, want 1m", d)
		}
	})

	retryAfter := []struct {
		name   string
		code   int
		header string
		want   time.Duration // 0: the schedule applies
	}{
		{"429 seconds", 429, "120", 2 * time.Minute},
		{"503 HTTP date", 503, now.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{"429 capped", 429, strconv.Itoa(3 * 24 * 3600), 10 * time.Hour},
		{"429 date in the past", 429, now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"429 garbage", 429, "soon", 0},
		{"500 ignores Retry-After", 500, "120", 0},
	}
	for _, tt := range retryAfter {
		t.Run("Retry-After "+tt.name, func(t *testing.T) {
			rc := newReceiver(t, b.secrets, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tt.header)
				w.WriteHeader(tt.code)
			})
			task := mustTask(t, finalJob(t), rc.srv.URL)
			err := s.ProcessTask(context.Background(), task)
			if err == nil {
				t.Fatal("ProcessTask succeeded")
			}
			d := s.RetryDelay(1, err, task)
			if tt.want == 0 {
				if d < 4*time.Minute || d > 6*time.Minute {
					t.Fatalf("delay %v, want the scheduled 5m±20%%", d)
				}
				return
			}
			if d != tt.want {
				t.Fatalf("delay %v, want %v", d, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"30", 30 * time.Second},
		{" 30 ", 30 * time.Second},
		{"99999999999999999999", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Second).Format(http.TimeFormat), 0},
		{"Thu, 01 May 2025 12:10:00 GMT", 10 * time.Minute},
		{"tomorrow", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	_, b := setup(t, nil)
	secrets := mustParseSecrets(t, newSecretString(t))
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"minimal", Config{Secrets: secrets, Redis: b.rdb}, ""},
		{"no secret", Config{Redis: b.rdb}, "no signing secret"},
		{"zero Secret", Config{Secrets: []Secret{{}}, Redis: b.rdb}, "Secrets[0] is empty"},
		{"no redis", Config{Secrets: secrets}, "Redis is required"},
		{"timeout too long", Config{Secrets: secrets, Redis: b.rdb, Timeout: time.Hour}, "Timeout"},
		{"connect above total", Config{Secrets: secrets, Redis: b.rdb, Timeout: time.Second, ConnectTimeout: 2 * time.Second}, "ConnectTimeout"},
		{"bad schedule", Config{Secrets: secrets, Redis: b.rdb, Schedule: []time.Duration{time.Second, 0}}, "Schedule[1]"},
		{"empty schedule", Config{Secrets: secrets, Redis: b.rdb, Schedule: []time.Duration{}}, "Schedule is empty"},
		{"jitter too large", Config{Secrets: secrets, Redis: b.rdb, RandomizationFactor: 1}, "RandomizationFactor"},
		{"default URL", Config{Secrets: secrets, Redis: b.rdb, DefaultURL: "https://hooks.example.com/faceidq"}, ""},
		{"default URL over http", Config{Secrets: secrets, Redis: b.rdb, DefaultURL: "http://hooks.example.com/"}, ""},
		{"default URL to metadata", Config{Secrets: secrets, Redis: b.rdb, DefaultURL: "https://169.254.169.254/"}, "DefaultURL"},
		{"default URL with userinfo", Config{Secrets: secrets, Redis: b.rdb, DefaultURL: "https://u:p@example.com/"}, "DefaultURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNilStoreAndObserver(t *testing.T) {
	_, b := setup(t, nil)
	s, err := New(Config{Secrets: mustParseSecrets(t, b.secrets...), Redis: b.rdb,
		Policy: Policy{Allow: mustParseAllow(t, "127.0.0.1/32")}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, b.secrets, status(500))
	if err := s.ProcessTask(context.Background(), mustTask(t, finalJob(t), rc.srv.URL)); err == nil {
		t.Fatal("want the failure")
	}
}
