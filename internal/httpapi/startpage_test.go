package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// TestStartLinkPages: a person's browser on a start link that cannot be followed gets
// a plain page saying what happened and what to do, with the JSON answer's status;
// API clients keep the JSON envelope.
func TestStartLinkPages(t *testing.T) {
	_, b, clock := campaignSetup(t, nil)
	link := func(t *testing.T, ttl string) string {
		t.Helper()
		r := b.do(t, "POST", "/v1/batches?mode=links&link_ttl="+ttl, `{"RedirectURL":"https://example.com/a"}`+"\n",
			"Content-Type", "application/x-ndjson")
		var sum campaign.ImportSummary
		if err := json.Unmarshal(r.body, &sum); err != nil || sum.Created != 1 {
			t.Fatalf("import: %d %s", r.status, r.body)
		}
		return b.rdb.LIndex(context.Background(), keys.BatchLinks(sum.BatchId), 0).Val()
	}
	revoked := link(t, "720h")
	if r := b.do(t, "POST", "/v1/links/"+revoked+"/revoke", ""); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	expired := link(t, "1h")
	failing := link(t, "720h")
	clock.Advance(2 * time.Hour)

	tests := []struct {
		name, id string
		status   int
		says     string
	}{
		{"revoked", revoked, http.StatusGone, "withdrawn"},
		{"expired", expired, http.StatusGone, "expired"},
		{"unknown", "l_nope", http.StatusNotFound, "not valid"},
		{"unknown, markup in the path", "l_%3Cscript%3Ealert(1)%3C%2Fscript%3E", http.StatusNotFound, "not valid"},
		{"upstream failure", failing, http.StatusBadGateway, "could not be started"},
	}
	mintFails.Store(true)
	defer mintFails.Store(false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := b.do(t, "GET", "/v1/start/"+tt.id, "", "Accept", browserAccept)
			body := string(page.body)
			if page.status != tt.status || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") ||
				!strings.Contains(body, tt.says) || !strings.Contains(body, "<h1>") {
				t.Fatalf("browser: %d %q\n%s", page.status, page.header.Get("Content-Type"), body)
			}
			lower := strings.ToLower(body)
			for _, bad := range []string{"<script", "http://", "https://", "src=", "<link", "{\"error\""} {
				if strings.Contains(lower, bad) {
					t.Fatalf("page holds %q:\n%s", bad, body)
				}
			}
			if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Fatalf("Content-Security-Policy = %q", csp)
			}
			if !strings.Contains(body, page.header.Get("X-Request-Id")) {
				t.Fatal("the page does not give the request id as a reference")
			}
			api := b.do(t, "GET", "/v1/start/"+tt.id, "", "Accept", "application/json")
			if api.status != tt.status || api.header.Get("Content-Type") != "application/json" {
				t.Fatalf("API client: %d %s", api.status, api.body)
			}
			api.envelope(t)
			if none := b.do(t, "GET", "/v1/start/"+tt.id, ""); none.header.Get("Content-Type") != "application/json" {
				t.Fatalf("no Accept: %q", none.header.Get("Content-Type"))
			}
		})
	}
}

func TestWantsHTML(t *testing.T) {
	for _, tt := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"*/*"}, false},
		{[]string{"application/json"}, false},
		{[]string{browserAccept}, true},
		{[]string{"text/html"}, true},
		{[]string{"application/json, text/html;q=0.5"}, false},
		{[]string{"text/html;q=0.9, application/json;q=0.8"}, true},
		{[]string{"text/html;q=0"}, false},
		{[]string{"text/plain", "text/html"}, true},
	} {
		r, _ := http.NewRequest("GET", "/v1/start/l_x", nil)
		for _, v := range tt.accept {
			r.Header.Add("Accept", v)
		}
		if got := wantsHTML(r); got != tt.want {
			t.Errorf("wantsHTML(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

// TestReturnPages checks that a person sent back to a return address that cannot be
// followed reads a plain page in a browser, and API clients get the JSON error.
func TestReturnPages(t *testing.T) {
	_, b := setup(t, func(c *Config) {
		p, err := producer.New(producer.Config{Redis: c.Redis, ReturnBase: "https://kyc.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		c.Producer = p
	})
	r := b.do(t, "POST", "/v1/tokens", `{"RedirectURL":"https://app.example.com/done","FetchResult":true}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	pending := r.job(t).JobId // no BizToken yet

	tests := []struct {
		name, id string
		status   int
		says     string
	}{
		{"unknown job", tasks.NewJobID(), http.StatusNotFound, "not known"},
		{"malformed id", "not-a-job", http.StatusNotFound, "not known"},
		{"markup in the path", "j_%3Cscript%3Ealert(1)%3C%2Fscript%3E", http.StatusNotFound, "not known"},
		{"job without a token", pending, http.StatusConflict, "not finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := b.do(t, "GET", "/v1/return/"+tt.id, "", "Accept", browserAccept)
			body := string(page.body)
			if page.status != tt.status || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") ||
				!strings.Contains(body, tt.says) || !strings.Contains(body, "<h1>") || page.header.Get("Location") != "" {
				t.Fatalf("browser: %d %q\n%s", page.status, page.header.Get("Content-Type"), body)
			}
			lower := strings.ToLower(body)
			for _, bad := range []string{"<script", "http://", "https://", "src=", "<link", "{\"error\""} {
				if strings.Contains(lower, bad) {
					t.Fatalf("page holds %q:\n%s", bad, body)
				}
			}
			if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Fatalf("Content-Security-Policy = %q", csp)
			}
			api := b.do(t, "GET", "/v1/return/"+tt.id, "", "Accept", "application/json")
			if api.status != tt.status || api.header.Get("Content-Type") != "application/json" {
				t.Fatalf("API client: %d %q %s", api.status, api.header.Get("Content-Type"), api.body)
			}
			api.envelope(t)
		})
	}
}
