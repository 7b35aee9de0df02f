package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

type testBundle struct {
	mini    *miniredis.Miniredis
	rdb     *redis.Client
	results *results.Store
	srv     *httptest.Server
}

// setup starts the API on miniredis (no workers: jobs stay queued unless a test
// finishes them) behind an httptest.Server.
func setup(t *testing.T, mod func(*Config)) (*API, *testBundle) {
	t.Helper()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	cfg := Config{Producer: p, Redis: rdb, Metrics: metrics.New()}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, &testBundle{mini: m, rdb: rdb, results: p.Results(), srv: srv}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) job(t *testing.T) *tasks.Job {
	t.Helper()
	var j tasks.Job
	if err := json.Unmarshal(a.body, &j); err != nil || j.JobId == "" {
		t.Fatalf("answer %d %s is not a job: %v", a.status, a.body, err)
	}
	return &j
}

func (a answer) envelope(t *testing.T) Envelope {
	t.Helper()
	var e Envelope
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" || e.RequestId == "" {
		t.Fatalf("answer %d %s is not an error envelope: %v", a.status, a.body, err)
	}
	return e
}

func (b *testBundle) do(t *testing.T, method, path, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost && body != "" {
		req.Header.Set("Content-Type", "application/json") // a test may give its own
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Content-Type" {
			req.Header.Del("Content-Type")
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, data}
}

func (b *testBundle) finish(t *testing.T, jobID string) {
	t.Helper()
	_, err := b.results.Finish(context.Background(), jobID, results.Final{Status: tasks.StatusSucceeded,
		BizToken: "tok", VerificationURL: "https://intl.faceid.qq.com/reflect/?token=tok", RequestID: "rid"})
	if err != nil {
		t.Fatal(err)
	}
}

const okBody = `{"RedirectURL":"https://example.com/done"}`

func TestSubmitAndGet(t *testing.T) {
	_, b := setup(t, nil)
	a := b.do(t, "POST", "/v1/tokens", okBody)
	if a.status != http.StatusAccepted {
		t.Fatalf("POST = %d %s", a.status, a.body)
	}
	j := a.job(t)
	if j.Status != tasks.StatusQueued || a.header.Get("Location") != "/v1/tokens/"+j.JobId || a.header.Get("Preference-Applied") != "" {
		t.Fatalf("POST answer %+v, headers %v", j, a.header)
	}
	g := b.do(t, "GET", "/v1/tokens/"+j.JobId, "")
	if g.status != http.StatusOK || g.job(t).JobId != j.JobId {
		t.Fatalf("GET = %d %s", g.status, g.body)
	}
	if strings.Contains(string(g.body), "Payload") {
		t.Fatalf("job answer shows the payload: %s", g.body)
	}
}

func TestPreferWait(t *testing.T) {
	a, b := setup(t, nil)

	t.Run("runs out: 202 as it stands", func(t *testing.T) {
		r := b.do(t, "POST", "/v1/tokens", okBody, "Prefer", "wait=1")
		if r.status != http.StatusAccepted || r.header.Get("Preference-Applied") != "wait=1" || r.job(t).Status != tasks.StatusQueued {
			t.Fatalf("POST wait=1 = %d %v %s", r.status, r.header, r.body)
		}
	})

	t.Run("finishes in time: 200 final", func(t *testing.T) {
		done := make(chan answer, 1)
		key := "k-" + t.Name()
		go func() {
			done <- b.do(t, "POST", "/v1/tokens", okBody, "Prefer", "respond-async, wait=30", "Idempotency-Key", key)
		}()
		waittest.Until(t, waittest.DefaultTimeout, "the POST to wait", func() bool { n, _ := a.waiter.Stats(); return n == 1 })
		// The job exists: find it through the idempotency key's answer.
		r := b.do(t, "POST", "/v1/tokens", okBody, "Idempotency-Key", key)
		b.finish(t, r.job(t).JobId)
		got := <-done
		if got.status != http.StatusOK || got.job(t).Status != tasks.StatusSucceeded || got.job(t).VerificationURL == "" ||
			got.header.Get("Preference-Applied") != "wait=30" {
			t.Fatalf("waiting POST = %d %v %s", got.status, got.header, got.body)
		}
	})

	t.Run("GET long poll", func(t *testing.T) {
		j := b.do(t, "POST", "/v1/tokens", okBody).job(t)
		done := make(chan answer, 1)
		go func() { done <- b.do(t, "GET", "/v1/tokens/"+j.JobId, "", "Prefer", "wait=30") }()
		waittest.Until(t, waittest.DefaultTimeout, "the GET to wait", func() bool { n, _ := a.waiter.Stats(); return n == 1 })
		b.finish(t, j.JobId)
		got := <-done
		if got.status != http.StatusOK || got.job(t).Status != tasks.StatusSucceeded {
			t.Fatalf("long poll = %d %s", got.status, got.body)
		}
	})

	t.Run("GET runs out: 200 as it stands", func(t *testing.T) {
		j := b.do(t, "POST", "/v1/tokens", okBody).job(t)
		got := b.do(t, "GET", "/v1/tokens/"+j.JobId, "", "Prefer", "wait=1")
		if got.status != http.StatusOK || got.job(t).Status != tasks.StatusQueued || got.header.Get("Preference-Applied") != "wait=1" {
			t.Fatalf("GET wait=1 = %d %v %s", got.status, got.header, got.body)
		}
	})

	t.Run("final already, capped wait", func(t *testing.T) {
		j := b.do(t, "POST", "/v1/tokens", okBody).job(t)
		b.finish(t, j.JobId)
		got := b.do(t, "GET", "/v1/tokens/"+j.JobId, "", "Prefer", "wait=600")
		if got.status != http.StatusOK || got.job(t).Status != tasks.StatusSucceeded || got.header.Get("Preference-Applied") != "wait=30" {
			t.Fatalf("GET wait=600 = %d %v %s", got.status, got.header, got.body)
		}
	})

	t.Run("idempotent repeat of a final job: 200", func(t *testing.T) {
		r := b.do(t, "POST", "/v1/tokens", okBody, "Idempotency-Key", "final-1")
		b.finish(t, r.job(t).JobId)
		again := b.do(t, "POST", "/v1/tokens", okBody, "Idempotency-Key", "final-1")
		if again.status != http.StatusOK || again.job(t).JobId != r.job(t).JobId {
			t.Fatalf("repeat = %d %s", again.status, again.body)
		}
	})
}

func TestIdempotency(t *testing.T) {
	_, b := setup(t, nil)
	first := b.do(t, "POST", "/v1/tokens", okBody, "Idempotency-Key", "abc")
	again := b.do(t, "POST", "/v1/tokens", okBody, "Idempotency-Key", "abc")
	if first.status != http.StatusAccepted || again.status != http.StatusAccepted || first.job(t).JobId != again.job(t).JobId {
		t.Fatalf("first %d %s, again %d %s", first.status, first.body, again.status, again.body)
	}
	other := b.do(t, "POST", "/v1/tokens", `{"RedirectURL":"https://example.com/other"}`, "Idempotency-Key", "abc")
	if other.status != http.StatusUnprocessableEntity || other.envelope(t).Error.Code != CodeIdempotencyMismatch {
		t.Fatalf("reuse with another body = %d %s", other.status, other.body)
	}
	twice := b.do(t, "POST", "/v1/tokens", okBody, "Idempotency-Key", "a", "Idempotency-Key", "b")
	if twice.status != http.StatusBadRequest || !strings.Contains(twice.envelope(t).Error.Message, "Idempotency-Key") {
		t.Fatalf("two keys = %d %s", twice.status, twice.body)
	}
}

func TestAuth(t *testing.T) {
	_, b := setup(t, func(c *Config) { c.Tokens = []string{"first-token", "second-token"} })
	tests := []struct {
		name, method, path, auth string
		want                     int
	}{
		{"no header", "POST", "/v1/tokens", "", 401},
		{"wrong token", "POST", "/v1/tokens", "Bearer nope", 401},
		{"prefix of a token", "POST", "/v1/tokens", "Bearer first", 401},
		{"wrong scheme", "POST", "/v1/tokens", "Basic Zmlyc3QtdG9rZW4=", 401},
		{"empty bearer", "POST", "/v1/tokens", "Bearer ", 401},
		{"first token", "POST", "/v1/tokens", "Bearer first-token", 202},
		{"second token, lower-case scheme", "POST", "/v1/tokens", "bearer second-token", 202},
		{"healthz open", "GET", "/healthz", "", 200},
		{"readyz closed", "GET", "/readyz", "", 401},
		{"metrics closed", "GET", "/metrics", "", 401},
		{"pipeline closed", "GET", "/v1/pipeline", "", 401},
		{"pause closed", "POST", "/v1/pipeline/pause", "", 401},
		{"unknown route closed", "GET", "/nope", "", 401},
		{"readyz with token", "GET", "/readyz", "Bearer second-token", 200},
		{"metrics with token", "GET", "/metrics", "Bearer first-token", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.auth != "" {
				h = []string{"Authorization", tt.auth}
			}
			r := b.do(t, tt.method, tt.path, okBody, h...)
			if r.status != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
			}
			if tt.want == 401 {
				if e := r.envelope(t); e.Error.Code != CodeUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 answer %v %s", r.header, r.body)
				}
			}
		})
	}
	if n := len(b.mini.Keys()); n == 0 {
		t.Fatal("the authorised POSTs created nothing")
	}
}

func TestErrors(t *testing.T) {
	_, b := setup(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	big := `{"RedirectURL":"https://example.com/done","CompareImageBase64":"` + strings.Repeat("QUJD", 2000) + `"}`
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     string
		message                  string
	}{
		{"unknown route", "GET", "/v2/tokens", "", nil, 404, CodeNotFound, "no route"},
		{"malformed JobId", "GET", "/v1/tokens/../../etc", "", nil, 404, "", ""},
		{"bad JobId", "GET", "/v1/tokens/j_nope", "", nil, 404, CodeJobNotFound, "JobId"},
		{"unknown JobId", "GET", "/v1/tokens/" + tasks.NewJobID(), "", nil, 404, CodeJobNotFound, "JobId"},
		{"wrong method on tokens", "GET", "/v1/tokens", "", nil, 405, CodeMethodNotAllowed, "POST"},
		{"wrong method on a job", "DELETE", "/v1/tokens/" + tasks.NewJobID(), "", nil, 405, CodeMethodNotAllowed, "GET"},
		{"wrong method on pause", "GET", "/v1/pipeline/pause", "", nil, 405, CodeMethodNotAllowed, "POST"},
		{"too large", "POST", "/v1/tokens", big, nil, 413, CodeBodyTooLarge, "body"},
		{"missing redirect", "POST", "/v1/tokens", `{}`, nil, 400, "MissingParameter", "RedirectURL"},
		{"bad prefer", "POST", "/v1/tokens", okBody, []string{"Prefer", "wait=soon"}, 400, "InvalidParameter", "Prefer"},
		{"callback without webhooks", "POST", "/v1/tokens", `{"RedirectURL":"https://e.com/x","CallbackURL":"https://e.com/cb"}`, nil, 400, "InvalidParameterValue", "CallbackURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
			if tt.code == "" {
				return
			}
			e := r.envelope(t)
			if e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.message) {
				t.Fatalf("envelope %+v, want %s mentioning %q", e, tt.code, tt.message)
			}
			if tt.status == 405 && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}

	t.Run("too large without Content-Length", func(t *testing.T) {
		req, _ := http.NewRequest("POST", b.srv.URL+"/v1/tokens", io.MultiReader(strings.NewReader(big)))
		req.ContentLength = -1 // chunked
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("chunked oversize = %d", resp.StatusCode)
		}
	})

	t.Run("redis down: 503 with a generic message", func(t *testing.T) {
		b.mini.Close()
		r := b.do(t, "POST", "/v1/tokens", okBody)
		e := r.envelope(t)
		if r.status != 503 || e.Error.Code != CodeUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("POST with Redis down = %d %s", r.status, r.body)
		}
		for _, leak := range []string{"dial", "127.0.0.1", "connection", "producer"} {
			if strings.Contains(e.Error.Message, leak) {
				t.Fatalf("message %q leaks %q", e.Error.Message, leak)
			}
		}
		if r := b.do(t, "GET", "/readyz", ""); r.status != 503 {
			t.Fatalf("readyz with Redis down = %d %s", r.status, r.body)
		}
		if r := b.do(t, "GET", "/healthz", ""); r.status != 200 {
			t.Fatalf("healthz with Redis down = %d", r.status)
		}
	})
}

func TestPipeline(t *testing.T) {
	_, b := setup(t, nil)
	state := func(r answer) (paused bool, reason string) {
		t.Helper()
		var st struct {
			Paused bool
			Reason string
		}
		if r.status != 200 || json.Unmarshal(r.body, &st) != nil {
			t.Fatalf("pipeline answer %d %s", r.status, r.body)
		}
		return st.Paused, st.Reason
	}
	if p, _ := state(b.do(t, "GET", "/v1/pipeline", "")); p {
		t.Fatal("paused at start")
	}
	if p, reason := state(b.do(t, "POST", "/v1/pipeline/pause", "")); !p || reason != "operator" {
		t.Fatalf("after pause: %v %q", p, reason)
	}
	if r := b.do(t, "POST", "/v1/tokens", okBody); r.status != 202 {
		t.Fatalf("POST while paused = %d %s", r.status, r.body)
	}
	r := b.do(t, "GET", "/readyz", "")
	var rd Readiness
	if r.status != 200 || json.Unmarshal(r.body, &rd) != nil || !rd.Ready || !rd.Paused {
		t.Fatalf("readyz while paused = %d %s", r.status, r.body)
	}
	m := b.do(t, "GET", "/metrics", "")
	if !strings.Contains(string(m.body), "faceidq_pipeline_paused 1") || !strings.Contains(string(m.body), `faceidq_http_requests_total{code="202",route="POST /v1/tokens"}`) {
		t.Fatalf("metrics lack the gauge or the request counter:\n%s", m.body)
	}
	if p, _ := state(b.do(t, "POST", "/v1/pipeline/resume", "")); p {
		t.Fatal("still paused after resume")
	}
}

func TestOps(t *testing.T) {
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	h, err := NewOps(Config{Redis: rdb, Metrics: metrics.New(), Tokens: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", 200}, {"/readyz", "Bearer t", 200}, {"/metrics", "Bearer t", 200},
		{"/readyz", "", 401}, {"/v1/tokens", "Bearer t", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path+tt.auth, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("GET %s = %d %s", tt.path, rec.Code, rec.Body)
			}
		})
	}
	if _, err := NewOps(Config{}); err == nil {
		t.Fatal("NewOps without Redis: want an error")
	}
	if _, err := New(Config{Redis: rdb}); err == nil {
		t.Fatal("New without Producer: want an error")
	}
}

func TestParseWait(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    time.Duration
		given   bool
		wantErr bool
	}{
		{"absent", nil, 0, false, false},
		{"simple", []string{"wait=5"}, 5 * time.Second, true, false},
		{"zero", []string{"wait=0"}, 0, true, false},
		{"among others", []string{"respond-async, wait=10"}, 10 * time.Second, true, false},
		{"case and spaces", []string{"  WAIT = 7 "}, 7 * time.Second, true, false},
		{"quoted", []string{`wait="3"`}, 3 * time.Second, true, false},
		{"with parameter", []string{"wait=4;foo=bar"}, 4 * time.Second, true, false},
		{"first wins", []string{"wait=2", "wait=9"}, 2 * time.Second, true, false},
		{"first wins in a line", []string{"wait=2, wait=9"}, 2 * time.Second, true, false},
		{"capped", []string{"wait=31"}, 30 * time.Second, true, false},
		{"huge capped", []string{"wait=99999999999999999999999"}, 30 * time.Second, true, false},
		{"other preference only", []string{"return=minimal"}, 0, false, false},
		{"quoted comma elsewhere", []string{`foo="a,wait=1", wait=6`}, 6 * time.Second, true, false},
		{"waiting is not wait", []string{"waiting=5"}, 0, false, false},
		{"word", []string{"wait=soon"}, 0, false, true},
		{"negative", []string{"wait=-1"}, 0, false, true},
		{"fraction", []string{"wait=1.5"}, 0, false, true},
		{"no value", []string{"wait"}, 0, false, true},
		{"empty value", []string{"wait="}, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Prefer", v)
			}
			got, given, err := parseWait(h, 30*time.Second)
			if (err != nil) != tt.wantErr || got != tt.want || given != tt.given {
				t.Fatalf("parseWait(%q) = %v, %v, %v; want %v, %v, error %v", tt.values, got, given, err, tt.want, tt.given, tt.wantErr)
			}
		})
	}
}

func TestWaitSurvivesLostSubscription(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	a, err := New(Config{Producer: p, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	hs := httptest.NewServer(a)
	defer hs.Close()
	b := &testBundle{rdb: rdb, results: p.Results(), srv: hs}

	j := b.do(t, "POST", "/v1/tokens", okBody).job(t)
	done := make(chan answer, 1)
	go func() { done <- b.do(t, "GET", "/v1/tokens/"+j.JobId, "", "Prefer", "wait=30") }()
	waittest.Until(t, waittest.DefaultTimeout, "the GET to wait", func() bool { n, subs := a.waiter.Stats(); return n == 1 && subs == 1 })
	ctx := context.Background()
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waittest.Until(t, waittest.DefaultTimeout, "the subscription to come back", func() bool { _, subs := a.waiter.Stats(); return subs == 2 })
	b.finish(t, j.JobId)
	if got := <-done; got.status != 200 || got.job(t).Status != tasks.StatusSucceeded {
		t.Fatalf("long poll across a lost subscription = %d %s", got.status, got.body)
	}
}

func TestCloseAnswersWaiters(t *testing.T) {
	a, b := setup(t, func(c *Config) { c.MaxWait = time.Hour })
	j := b.do(t, "POST", "/v1/tokens", okBody).job(t)
	done := make(chan answer, 1)
	go func() { done <- b.do(t, "GET", "/v1/tokens/"+j.JobId, "", "Prefer", "wait=3600") }()
	waittest.Until(t, waittest.DefaultTimeout, "the GET to wait", func() bool { n, _ := a.waiter.Stats(); return n == 1 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got.status != 200 || got.job(t).Status != tasks.StatusQueued {
			t.Fatalf("answer after Close = %d %s", got.status, got.body)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("a waiting request was not answered after Close")
	}
	if err := a.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}
