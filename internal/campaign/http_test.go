package campaign_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

func TestHandler(t *testing.T) {
	clock := newFakeClock()
	fm := &fakeMinter{clock: clock, byKey: map[string]*tasks.Job{}}
	m, b := setup(t, campaign.Config{Now: clock.Now, Mint: fm.mint})
	fm.st = results.New(b.rdb, results.Config{Now: clock.Now})
	h, err := campaign.NewHandler(campaign.HandlerConfig{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	do := func(t *testing.T, method, path, ctype, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

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
	t.Run("POST CSV with a bad header", func(t *testing.T) {
		resp, raw := do(t, "POST", "/v1/batches", "text/csv", "url\nhttps://example.com\n")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "unknown column") {
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
		resp, err := http.Get(srv.URL + "/v1/batches/" + created.BatchId + "/results")
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
			{"pause", `"State":"paused"`}, {"resume", `"State":"active"`}, {"cancel", `"Canceled":4`}, {"rerun?canceled=1", `"Reopened":4`},
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
		resp, raw := do(t, "POST", "/v1/batches?mode=links", "", `{"RedirectURL":"https://example.com/a"}`)
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
		if resp, _ := do(t, "GET", "/v1/start/"+id, "", ""); resp.StatusCode != http.StatusGone {
			t.Fatalf("revoked: %d", resp.StatusCode)
		}
		if resp, _ := do(t, "GET", "/v1/start/l_nope", "", ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown link: %d", resp.StatusCode)
		}
	})
}
