package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceidtest"
	"github.com/faceidq/faceidq/internal/httpapi"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/tasks"
)

// keyCount counts the keys a new job would create: its result, its asynq task and
// a stored image.
func keyCount(t *testing.T, rdb *redis.Client) (results, tasks, images int) {
	t.Helper()
	ctx := context.Background()
	n := func(pattern string) int {
		ks, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(ks)
	}
	return n("faceidq:result:*"), n("asynq:{*}:t:*"), n("faceidq:image:*")
}

// TestAPIAndWorker runs `faceidq api` and `faceidq worker` as two programs against
// a real redis-server and the upstream simulator.
func TestAPIAndWorker(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	sim := faceidtest.Start(t, simulator.Config{})
	const tok1, tok2 = "token-one-0123456789", "token-two-0123456789"
	api := start(t, map[string]string{"REDIS_URL": srv.URL(), "FACEIDQ_API_TOKENS": tok1 + ", " + tok2},
		"api", "--listen", "127.0.0.1:0")
	wrk := start(t, map[string]string{"REDIS_URL": srv.URL(), "FACEIDQ_API_TOKENS": tok1,
		"TENCENTCLOUD_SECRET_ID": sim.SecretID, "TENCENTCLOUD_SECRET_KEY": sim.SecretKey,
		"FACEIDQ_ENDPOINT": sim.URL, "FACEIDQ_METRICS_LISTEN": "127.0.0.1:0"}, "worker")
	c := &client{t: t, base: "http://" + api.addr("api"), token: tok2}

	t.Run("auth", func(t *testing.T) {
		tests := []struct {
			name, method, path, token string
			want                      int
		}{
			{"no token", "POST", "/v1/tokens", "", 401},
			{"wrong token", "POST", "/v1/tokens", "token-three", 401},
			{"no token on a job", "GET", "/v1/tokens/" + tasks.NewJobID(), "", 401},
			{"no token on readyz", "GET", "/readyz", "", 401},
			{"no token on metrics", "GET", "/metrics", "", 401},
			{"no token on pipeline", "GET", "/v1/pipeline", "", 401},
			{"healthz is open", "GET", "/healthz", "", 200},
			{"first token", "GET", "/readyz", tok1, 200},
			{"second token", "GET", "/metrics", tok2, 200},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cl := &client{t: t, base: c.base, token: tt.token}
				r := cl.do(tt.method, tt.path, okBody)
				if r.status != tt.want {
					t.Fatalf("%s %s = %d %s", tt.method, tt.path, r.status, r.body)
				}
				if tt.want == 401 && (r.envelope(t).Error.Code != "AuthFailure.UnauthorizedOperation" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer")) {
					t.Fatalf("401 = %v %s", r.header, r.body)
				}
			})
		}
		if res, _, _ := keyCount(t, rdb); res != 0 {
			t.Fatalf("%d jobs created without a valid token", res)
		}
	})

	t.Run("not found", func(t *testing.T) {
		for _, path := range []string{"/v1/tokens/" + tasks.NewJobID(), "/v1/tokens/j_bad", "/v1/tokens/%2e%2e", "/v1/nothing", "/"} {
			r := c.do("GET", path, "")
			if r.status != 404 || !strings.HasPrefix(r.envelope(t).Error.Code, "ResourceNotFound") {
				t.Errorf("GET %s = %d %s", path, r.status, r.body)
			}
		}
		if r := c.do("PUT", "/v1/tokens", okBody); r.status != 405 || r.header.Get("Allow") != "POST" {
			t.Errorf("PUT /v1/tokens = %d %v", r.status, r.header)
		}
	})

	// Malformed requests are refused naming the field, and create nothing. The
	// pipeline is paused meanwhile so that no task could be taken and vanish.
	t.Run("malformed requests", func(t *testing.T) {
		if r := c.do("POST", "/v1/pipeline/pause", ""); r.status != 200 {
			t.Fatalf("pause = %d %s", r.status, r.body)
		}
		defer c.do("POST", "/v1/pipeline/resume", "")
		cases := []struct {
			name, body string
			headers    []string
			field      string
		}{
			{"empty body", ``, nil, "body"},
			{"form body", `RedirectURL=https://example.com/done`, nil, "body"},
			{"array", `[` + okBody + `]`, nil, "body"},
			{"two objects", okBody + okBody, nil, "body"},
			{"truncated", `{"RedirectURL":"https://example.com/done"`, nil, "body"},
			{"unknown field", `{"RedirectURL":"https://example.com/done","Redirect":"x"}`, nil, "Redirect"},
			{"wrong case", `{"redirectUrl":"https://example.com/done"}`, nil, "redirectUrl"},
			{"repeated field", `{"RedirectURL":"https://example.com/a","RedirectURL":"https://example.com/b"}`, nil, "RedirectURL"},
			{"RedirectURL number", `{"RedirectURL":42}`, nil, "RedirectURL"},
			{"RedirectURL missing", `{"Extra":"x"}`, nil, "RedirectURL"},
			{"RedirectURL relative", `{"RedirectURL":"/done"}`, nil, "RedirectURL"},
			{"RedirectURL ftp", `{"RedirectURL":"ftp://example.com/done"}`, nil, "RedirectURL"},
			{"RedirectURL space", `{"RedirectURL":"https://example.com/a b"}`, nil, "RedirectURL"},
			{"RedirectURL over 8000 bytes", `{"RedirectURL":"https://example.com/` + strings.Repeat("a", 8000) + `"}`, nil, "RedirectURL"},
			{"RedirectURL control character", `{"RedirectURL":"https://example.com/\u0007"}`, nil, "RedirectURL"},
			{"image line break", `{"RedirectURL":"https://example.com/done","CompareImageBase64":"YWJj\nYWJj"}`, nil, "CompareImageBase64"},
			{"image not base64", `{"RedirectURL":"https://example.com/done","CompareImageBase64":"!!!!"}`, nil, "CompareImageBase64"},
			{"image number", `{"RedirectURL":"https://example.com/done","CompareImageBase64":7}`, nil, "CompareImageBase64"},
			{"Extra too long", `{"RedirectURL":"https://example.com/done","Extra":"` + strings.Repeat("é", 1001) + `"}`, nil, "Extra"},
			{"Extra object", `{"RedirectURL":"https://example.com/done","Extra":{}}`, nil, "Extra"},
			{"Region unsupported", `{"RedirectURL":"https://example.com/done","Region":"ap-guangzhou"}`, nil, "Region"},
			{"Region number", `{"RedirectURL":"https://example.com/done","Region":1}`, nil, "Region"},
			{"Priority unknown", `{"RedirectURL":"https://example.com/done","Priority":"urgent"}`, nil, "Priority"},
			{"CallbackURL without webhooks", `{"RedirectURL":"https://example.com/done","CallbackURL":"https://example.com/cb"}`, nil, "CallbackURL"},
			{"Config string", `{"RedirectURL":"https://example.com/done","Config":"{}"}`, nil, "Config"},
			{"Config unknown field", `{"RedirectURL":"https://example.com/done","Config":{"IdCardType":"HKIDCard"}}`, nil, "Config.IdCardType"},
			{"CheckMode out of range", `{"RedirectURL":"https://example.com/done","Config":{"CheckMode":9}}`, nil, "Config.CheckMode"},
			{"CheckMode string", `{"RedirectURL":"https://example.com/done","Config":{"CheckMode":"1"}}`, nil, "Config.CheckMode"},
			{"SecurityLevel out of range", `{"RedirectURL":"https://example.com/done","Config":{"SecurityLevel":7}}`, nil, "Config.SecurityLevel"},
			{"Language", `{"RedirectURL":"https://example.com/done","Config":{"Language":"fr"}}`, nil, "Config.Language"},
			{"ActionList without level", `{"RedirectURL":"https://example.com/done","Config":{"ActionList":"blink"}}`, nil, "Config.ActionList"},
			{"LivenessTimeout", `{"RedirectURL":"https://example.com/done","Config":{"LivenessTimeout":601}}`, nil, "Config.LivenessTimeout"},
			{"LivenessTimeout negative", `{"RedirectURL":"https://example.com/done","Config":{"LivenessTimeout":-1}}`, nil, "Config.LivenessTimeout"},
			{"IDCardType", `{"RedirectURL":"https://example.com/done","Config":{"IDCardType":"Passport"}}`, nil, "Config.IDCardType"},
			{"Version", `{"RedirectURL":"https://example.com/done","Config":{"Version":"GOLD"}}`, nil, "Config.Version"},
			{"AutoSkip string", `{"RedirectURL":"https://example.com/done","Config":{"AutoSkip":"yes"}}`, nil, "Config.AutoSkip"},
			{"Prefer wait word", okBody, []string{"Prefer", "wait=soon"}, "Prefer"},
			{"Idempotency-Key too long", okBody, []string{"Idempotency-Key", strings.Repeat("k", 300)}, "Idempotency-Key"},
			{"Idempotency-Key not ASCII", okBody, []string{"Idempotency-Key", "clé"}, "Idempotency-Key"},
			{"too large", `{"RedirectURL":"https://example.com/done","CompareImageBase64":"` + strings.Repeat("A", httpapi.DefaultMaxBodyBytes) + `"}`, nil, "body"},
		}
		if len(cases) < 30 {
			t.Fatalf("only %d cases", len(cases))
		}
		r0, t0, i0 := keyCount(t, rdb)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.do("POST", "/v1/tokens", tc.body, tc.headers...)
				if r.status < 400 || r.status > 499 {
					t.Fatalf("status %d %s, want 4xx", r.status, r.body)
				}
				e := r.envelope(t)
				if !strings.Contains(e.Error.Message, tc.field) {
					t.Fatalf("message %q does not name %s", e.Error.Message, tc.field)
				}
				if res, tk, img := keyCount(t, rdb); res != r0 || tk != t0 || img != i0 {
					t.Fatalf("keys went from %d results, %d tasks, %d images to %d, %d, %d", r0, t0, i0, res, tk, img)
				}
			})
		}
	})

	t.Run("pause and resume while accepting", func(t *testing.T) {
		if r := c.do("POST", "/v1/pipeline/pause", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"Paused":true`)) {
			t.Fatalf("pause = %d %s", r.status, r.body)
		}
		var ids []string
		for i := range 3 {
			r := c.do("POST", "/v1/tokens", okBody, "Prefer", "wait=1")
			if r.status != 202 || r.header.Get("Preference-Applied") != "wait=1" || r.job(t).Status != tasks.StatusQueued {
				t.Fatalf("POST %d while paused = %d %v %s", i, r.status, r.header, r.body)
			}
			ids = append(ids, r.job(t).JobId)
		}
		if r := c.do("GET", "/v1/tokens/"+ids[0], "", "Prefer", "wait=1"); r.status != 200 || r.job(t).Status != tasks.StatusQueued {
			t.Fatalf("GET wait=1 while paused = %d %s", r.status, r.body)
		}
		if r := c.do("GET", "/readyz", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"Paused":true`)) {
			t.Fatalf("readyz while paused = %d %s", r.status, r.body)
		}
		if r := c.do("POST", "/v1/pipeline/resume", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"Paused":false`)) {
			t.Fatalf("resume = %d %s", r.status, r.body)
		}
		for _, id := range ids {
			r := c.do("GET", "/v1/tokens/"+id, "", "Prefer", "wait=30")
			if r.status != 200 || r.job(t).Status != tasks.StatusSucceeded || r.job(t).VerificationURL == "" {
				t.Fatalf("GET after resume = %d %s", r.status, r.body)
			}
		}
	})

	t.Run("submit and wait", func(t *testing.T) {
		r := c.do("POST", "/v1/tokens", `{"RedirectURL":"https://example.com/done","Extra":"user-42","Priority":"batch"}`, "Prefer", "wait=30")
		j := r.job(t)
		if r.status != 200 || j.Status != tasks.StatusSucceeded || j.Extra != "user-42" || j.BizToken == "" || j.ExpiresAt == nil {
			t.Fatalf("POST wait=30 = %d %s", r.status, r.body)
		}
	})

	t.Run("submit then poll", func(t *testing.T) {
		r := c.do("POST", "/v1/tokens", okBody)
		if r.status != 202 && r.status != 200 {
			t.Fatalf("POST = %d %s", r.status, r.body)
		}
		loc := r.header.Get("Location")
		g := c.do("GET", loc, "", "Prefer", "wait=30")
		if g.status != 200 || g.job(t).Status != tasks.StatusSucceeded {
			t.Fatalf("GET %s = %d %s", loc, g.status, g.body)
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		first := c.do("POST", "/v1/tokens", okBody, "Idempotency-Key", "signup-7")
		again := c.do("POST", "/v1/tokens", okBody, "Idempotency-Key", "signup-7", "Prefer", "wait=30")
		if first.job(t).JobId != again.job(t).JobId || again.status != 200 || again.job(t).Status != tasks.StatusSucceeded {
			t.Fatalf("first %s, again %d %s", first.body, again.status, again.body)
		}
		third := c.do("POST", "/v1/tokens", okBody, "Idempotency-Key", "signup-7")
		if third.status != 200 || third.job(t).JobId != first.job(t).JobId {
			t.Fatalf("repeat of a final job = %d %s", third.status, third.body)
		}
		other := c.do("POST", "/v1/tokens", `{"RedirectURL":"https://example.com/else"}`, "Idempotency-Key", "signup-7")
		if other.status != 422 || !strings.Contains(other.envelope(t).Error.Message, "Idempotency-Key") {
			t.Fatalf("same key, other body = %d %s", other.status, other.body)
		}
	})

	t.Run("worker health and metrics", func(t *testing.T) {
		w := &client{t: t, base: "http://" + wrk.addr("metrics")}
		if r := w.do("GET", "/healthz", ""); r.status != 200 {
			t.Fatalf("worker healthz = %d", r.status)
		}
		if r := w.do("GET", "/metrics", ""); r.status != 401 {
			t.Fatalf("worker metrics without token = %d", r.status)
		}
		w.token = tok1
		r := w.do("GET", "/metrics", "")
		if r.status != 200 || !strings.Contains(string(r.body), `faceidq_upstream_calls_total{action="ApplyWebVerificationBizTokenIntl",code="OK"}`) {
			t.Fatalf("worker metrics = %d\n%s", r.status, r.body)
		}
		if r := w.do("GET", "/readyz", ""); r.status != 200 {
			t.Fatalf("worker readyz = %d", r.status)
		}
	})

	t.Run("api metrics", func(t *testing.T) {
		r := c.do("GET", "/metrics", "")
		for _, want := range []string{`faceidq_jobs_submitted_total{lane="interactive"}`, `faceidq_http_requests_total{code="413",route="POST /v1/tokens"} 1`, "faceidq_pipeline_paused 0"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("api metrics lack %q", want)
			}
		}
	})

	t.Run("cli", func(t *testing.T) {
		env := map[string]string{"REDIS_URL": srv.URL()}
		cli := func(args ...string) (int, string, string) {
			var out, errb bytes.Buffer
			code := run(context.Background(), args, getenvFrom(env), &out, &errb)
			return code, out.String(), errb.String()
		}
		code, out, errs := cli("enqueue", "--redirect-url", "https://example.com/cli", "--extra", "from-cli", "--wait", "30s")
		var j tasks.Job
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Status != tasks.StatusSucceeded || j.Extra != "from-cli" {
			t.Fatalf("enqueue = %d %s %s", code, out, errs)
		}
		if code, out, errs := cli("status", j.JobId); code != 0 || !strings.Contains(out, j.VerificationURL) {
			t.Fatalf("status = %d %s %s", code, out, errs)
		}
		if code, _, errs := cli("status", tasks.NewJobID()); code != 1 || !strings.Contains(errs, "no job") {
			t.Fatalf("status of an unknown job = %d %s", code, errs)
		}
		if code, _, errs := cli("enqueue", "--redirect-url", "nope"); code != 2 || !strings.Contains(errs, "--redirect-url") {
			t.Fatalf("enqueue of a bad URL = %d %s", code, errs)
		}
		if code, out, _ := cli("pause"); code != 0 || !strings.Contains(out, `"Paused": true`) {
			t.Fatalf("pause = %d %s", code, out)
		}
		if code, out, _ := cli("pipeline"); code != 0 || !strings.Contains(out, `"Reason": "operator"`) {
			t.Fatalf("pipeline = %d %s", code, out)
		}
		if code, out, _ := cli("resume"); code != 0 || !strings.Contains(out, `"Paused": false`) {
			t.Fatalf("resume = %d %s", code, out)
		}
	})

	if strings.Contains(api.stderr.String(), `"level":"error"`) || strings.Contains(wrk.stderr.String(), `"level":"error"`) {
		t.Errorf("error log lines:\napi:\n%s\nworker:\n%s", api.stderr, wrk.stderr)
	}
}
