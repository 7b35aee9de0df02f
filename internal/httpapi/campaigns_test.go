package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/jobwait"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/metrics"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mintFails makes campaignSetup's minter fail its jobs, as an upstream failure would.
var mintFails atomic.Bool

// campaignSetup starts the API with campaigns on a real redis-server (the campaign
// scripts), minting link tokens at once, as a worker would, with tokens expiring 10
// minutes after the clock's now.
func campaignSetup(t *testing.T, mod func(*Config)) (*API, *testBundle, *fakeClock) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	clock := &fakeClock{t: time.Now().UTC()}
	st := results.New(rdb, results.Config{Now: clock.Now})
	var mu sync.Mutex
	byKey := map[string]*tasks.Job{}
	mint := func(ctx context.Context, req *tasks.TokenRequest, key string) (*tasks.Job, error) {
		mu.Lock()
		defer mu.Unlock()
		if j, ok := byKey[key]; ok {
			return j, nil
		}
		id := tasks.NewJobID()
		if err := st.Create(ctx, results.NewRecord{JobID: id, Priority: req.Priority}); err != nil {
			return nil, err
		}
		fin := results.Final{Status: tasks.StatusSucceeded, BizToken: "tok-" + id,
			VerificationURL: "https://verify.example/" + id, ExpiresAt: clock.Now().Add(10 * time.Minute)}
		if mintFails.Load() {
			fin = results.Final{Status: tasks.StatusFailed, ErrorCode: "InternalError", ErrorMessage: "boom"}
		}
		if _, err := st.Finish(ctx, id, fin); err != nil {
			return nil, err
		}
		j, err := st.Get(ctx, id)
		byKey[key] = j
		return j, err
	}
	w, err := jobwait.New(jobwait.Config{Redis: rdb, Results: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	m, err := campaign.New(campaign.Config{Redis: rdb, Producer: p, Now: clock.Now, Mint: mint, Waiter: w})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Producer: p, Redis: rdb, Metrics: metrics.New(), Waiter: w, Campaigns: m}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	return a, &testBundle{rdb: rdb, results: p.Results(), srv: hs}, clock
}

func TestCampaignRoutes(t *testing.T) {
	_, b, _ := campaignSetup(t, func(c *Config) { c.Tokens = []string{"first-token"} })
	auth := []string{"Authorization", "Bearer first-token"}
	tests := []struct {
		name, method, path string
		token              bool
		want               int
		body               string // in the answer
	}{
		{"import needs a token", "POST", "/v1/batches", false, 401, "AuthFailure"},
		{"list needs a token", "GET", "/v1/batches", false, 401, "AuthFailure"},
		{"status needs a token", "GET", "/v1/batches/b_x", false, 401, "AuthFailure"},
		{"results need a token", "GET", "/v1/batches/b_x/results", false, 401, "AuthFailure"},
		{"cancel needs a token", "POST", "/v1/batches/b_x/cancel", false, 401, "AuthFailure"},
		{"link needs a token", "GET", "/v1/links/l_x", false, 401, "AuthFailure"},
		{"revoke needs a token", "POST", "/v1/links/l_x/revoke", false, 401, "AuthFailure"},
		{"start is open", "GET", "/v1/start/l_x", false, 404, "ResourceNotFound.Link"},
		{"list", "GET", "/v1/batches", true, 200, "["},
		{"status", "GET", "/v1/batches/b_x", true, 404, "ResourceNotFound.Batch"},
		{"results", "GET", "/v1/batches/b_x/results", true, 404, "ResourceNotFound.Batch"},
		{"rerun", "POST", "/v1/batches/b_x/rerun", true, 404, "ResourceNotFound.Batch"},
		{"revoke", "POST", "/v1/links/l_x/revoke", true, 404, "ResourceNotFound.Link"},
		{"unknown action", "POST", "/v1/batches/b_x/explode", true, 404, `"ResourceNotFound"`},
		{"wrong method on a batch", "DELETE", "/v1/batches/b_x", true, 405, "MethodNotAllowed"},
		{"wrong method on pause", "GET", "/v1/batches/b_x/pause", true, 405, "MethodNotAllowed"},
		{"wrong method on start", "POST", "/v1/start/l_x", false, 405, "MethodNotAllowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.token {
				h = auth
			}
			r := b.do(t, tt.method, tt.path, "", h...)
			if r.status != tt.want || !strings.Contains(string(r.body), tt.body) {
				t.Fatalf("%s %s = %d %s, want %d with %q", tt.method, tt.path, r.status, r.body, tt.want, tt.body)
			}
			if r.status >= 400 {
				r.envelope(t) // with a RequestId, as every error
			}
		})
	}
	if r := b.do(t, "PUT", "/v1/batches", "", auth...); r.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	m := b.do(t, "GET", "/metrics", "", auth...)
	for _, want := range []string{`route="GET /v1/batches/{BatchId}"`, `route="GET /v1/start/{LinkId}"`} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(m.body), "b_x") || strings.Contains(string(m.body), "l_x") {
		t.Error("a metrics label holds a path")
	}
}

func ndjsonRows(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"RedirectURL":"https://example.com/r/%d","Extra":"e%d","RowKey":"r%04d"}`+"\n", i, i, i)
	}
	return b.String()
}

// TestCampaignHandlers is campaign/http_test.go's TestHandler, moved with the
// handlers: every campaign route end to end on a real Manager.
func TestCampaignHandlers(t *testing.T) {
	_, b, clock := campaignSetup(t, nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(t *testing.T, method, path, ctype, body string) (*http.Response, []byte) {
		t.Helper()
		var h []string
		if ctype != "" {
			h = []string{"Content-Type", ctype}
		}
		r := b.do(t, method, path, body, h...)
		return &http.Response{StatusCode: r.status, Header: r.header}, r.body
	}
	b.srv.Client().CheckRedirect = noRedirect.CheckRedirect

	var created struct {
		BatchId  string
		Accepted int
		Rejected []struct {
			Line  int
			Error struct{ Code, Message string }
		}
	}
	t.Run("POST /v1/batches", func(t *testing.T) {
		body := ndjsonRows(3) + `{"RedirectURL":"ftp://x"}` + "\n" + `{"RedirectURL":"https://example.com/z"}`
		resp, raw := do(t, "POST", "/v1/batches?name=web", "application/x-ndjson", body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		if err := json.Unmarshal(raw, &created); err != nil {
			t.Fatal(err)
		}
		if !tasks.ValidID("b_", created.BatchId) || created.Accepted != 4 || len(created.Rejected) != 1 ||
			created.Rejected[0].Line != 4 || !strings.HasPrefix(created.Rejected[0].Error.Code, "InvalidParameter") ||
			!strings.Contains(created.Rejected[0].Error.Message, "RedirectURL") {
			t.Fatalf("answer = %s", raw)
		}
	})
	t.Run("weight", func(t *testing.T) {
		resp, raw := do(t, "POST", "/v1/batches?name=heavy&weight=3", "application/x-ndjson", ndjsonRows(1))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("import at weight 3: %d %s", resp.StatusCode, raw)
		}
		if _, raw := do(t, "GET", "/v1/batches", "", ""); !strings.Contains(string(raw), `"Name":"heavy","Mode":"tokens","State":"active","Total":1,"Weight":3`) {
			t.Fatalf("list: %s", raw)
		}
		for _, bad := range []string{"0", "-1", "1001", "x", "1.5", ""} {
			resp, raw := do(t, "POST", "/v1/batches?name=bad&weight="+bad, "application/x-ndjson", ndjsonRows(1))
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "weight") || !strings.Contains(string(raw), "1 to 1000") {
				t.Fatalf("import at weight %q: %d %s", bad, resp.StatusCode, raw)
			}
			resp, raw = do(t, "POST", "/v1/batches/heavy/weight?weight="+bad, "", "")
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "weight") {
				t.Fatalf("set weight %q: %d %s", bad, resp.StatusCode, raw)
			}
		}
		if resp, raw := do(t, "POST", "/v1/batches/heavy/weight", "", ""); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("set weight without one: %d %s", resp.StatusCode, raw)
		}
		if resp, _ := do(t, "GET", "/v1/batches/bad", "", ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("an import refused for its weight created campaign %q", "bad")
		}
		if resp, raw := do(t, "POST", "/v1/batches/heavy/weight?weight=1000", "", ""); resp.StatusCode != 200 || !strings.Contains(string(raw), `"Weight":1000`) {
			t.Fatalf("set weight 1000: %d %s", resp.StatusCode, raw)
		}
	})
	t.Run("POST CSV with a bad header", func(t *testing.T) {
		resp, raw := do(t, "POST", "/v1/batches", "text/csv", "url\nhttps://example.com\n")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "unknown column") || !strings.Contains(string(raw), `"RequestId"`) {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
	})
	t.Run("GET /v1/batches/{id}", func(t *testing.T) {
		for _, ref := range []string{created.BatchId, "web"} {
			resp, raw := do(t, "GET", "/v1/batches/"+ref, "", "")
			var p campaign.Progress
			if err := json.Unmarshal(raw, &p); err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			if p.Total != 4 || p.Counts["queued"] != 4 || p.BatchId != created.BatchId {
				t.Fatalf("progress = %s", raw)
			}
			if !strings.Contains(string(raw), `"Rate":0`) || !strings.Contains(string(raw), `"ETA":null`) {
				t.Fatalf("progress lacks Rate/ETA: %s", raw)
			}
		}
		if resp, _ := do(t, "GET", "/v1/batches/"+tasks.NewBatchID(), "", ""); resp.StatusCode != 404 {
			t.Fatalf("unknown batch: %d", resp.StatusCode)
		}
	})
	t.Run("GET results streams NDJSON jobs", func(t *testing.T) {
		resp, err := http.Get(b.srv.URL + "/v1/batches/" + created.BatchId + "/results")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		n := 0
		for sc.Scan() {
			var j tasks.Job
			if err := json.Unmarshal(sc.Bytes(), &j); err != nil || j.BatchId != created.BatchId || j.Status != tasks.StatusQueued {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if strings.Contains(sc.Text(), "Payload") {
				t.Fatalf("job object leaks the payload: %s", sc.Text())
			}
			n++
		}
		if n != 4 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%d jobs, content type %q", n, resp.Header.Get("Content-Type"))
		}
		resp2, raw := do(t, "GET", "/v1/batches/web/results?format=csv", "", "")
		if resp2.StatusCode != 200 || strings.Count(string(raw), "\n") != 5 || !strings.HasPrefix(string(raw), "row_key,job_id") {
			t.Fatalf("csv: %d %s", resp2.StatusCode, raw)
		}
	})
	t.Run("control", func(t *testing.T) {
		for _, tc := range []struct{ action, want string }{
			{"pause", `"State":"paused"`}, {"resume", `"State":"active"`}, {"weight?weight=5", `"Weight":5`},
			{"cancel", `"Canceled":4`}, {"rerun?canceled=1", `"Reopened":4`},
		} {
			resp, raw := do(t, "POST", "/v1/batches/"+created.BatchId+"/"+tc.action, "", "")
			if resp.StatusCode != 200 || !strings.Contains(string(raw), tc.want) {
				t.Fatalf("%s: %d %s", tc.action, resp.StatusCode, raw)
			}
		}
		if resp, _ := do(t, "POST", "/v1/batches/"+created.BatchId+"/explode", "", ""); resp.StatusCode != 404 {
			t.Fatalf("unknown action: %d", resp.StatusCode)
		}
	})
	t.Run("GET /v1/start/{LinkId}", func(t *testing.T) {
		resp, raw := do(t, "POST", "/v1/batches?mode=links", "application/x-ndjson", `{"RedirectURL":"https://example.com/a"}`)
		var sum campaign.ImportSummary
		if err := json.Unmarshal(raw, &sum); err != nil || resp.StatusCode != 202 || sum.Created != 1 {
			t.Fatalf("%d %s", resp.StatusCode, raw)
		}
		id := b.rdb.LIndex(context.Background(), keys.BatchLinks(sum.BatchId), 0).Val()
		resp, _ = do(t, "GET", "/v1/start/"+id, "", "")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://verify.example/") || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("start: %d %q", resp.StatusCode, loc)
		}
		if resp, _ := do(t, "GET", "/v1/start/"+id, "", ""); resp.Header.Get("Location") != loc {
			t.Fatalf("reopen went to %q, want %q", resp.Header.Get("Location"), loc)
		}
		clock.Advance(9 * time.Minute)
		if resp, _ := do(t, "GET", "/v1/start/"+id, "", ""); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") == loc {
			t.Fatalf("after expiry: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, raw := do(t, "GET", "/v1/links/"+id, "", ""); resp.StatusCode != 200 || !strings.Contains(string(raw), `"Mints":2`) {
			t.Fatalf("link: %d %s", resp.StatusCode, raw)
		}
		if resp, _ := do(t, "POST", "/v1/links/"+id+"/revoke", "", ""); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		if resp, raw := do(t, "GET", "/v1/start/"+id, "", ""); resp.StatusCode != http.StatusGone || !strings.Contains(string(raw), "FailedOperation.LinkRevoked") {
			t.Fatalf("revoked: %d %s", resp.StatusCode, raw)
		}
		if resp, _ := do(t, "GET", "/v1/start/l_nope", "", ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown link: %d", resp.StatusCode)
		}
	})
}

// TestCampaignInternalErrors: an unexpected error is 500 InternalError on a campaign
// route (as before the move) and 503 on the token routes, both in the one envelope.
func TestCampaignInternalErrors(t *testing.T) {
	_, b, _ := campaignSetup(t, nil)
	_ = b.rdb.Close() // every Redis call now fails
	if r := b.do(t, "GET", "/v1/batches", ""); r.status != 500 || r.envelope(t).Error.Code != CodeInternal {
		t.Fatalf("campaign list without Redis = %d %s", r.status, r.body)
	}
	if r := b.do(t, "GET", "/v1/tokens/"+tasks.NewJobID(), ""); r.status != 503 || r.envelope(t).Error.Code != CodeUnavailable {
		t.Fatalf("job read without Redis = %d %s", r.status, r.body)
	}
}
