package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// stubCampaigns answers with the pattern that served the request, routed as
// campaign.NewHandler routes.
func stubCampaigns() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"POST /v1/batches", "GET /v1/batches", "GET /v1/batches/{BatchId}",
		"GET /v1/batches/{BatchId}/results", "POST /v1/batches/{BatchId}/{action}", "GET /v1/start/{LinkId}",
		"GET /v1/links/{LinkId}", "POST /v1/links/{LinkId}/revoke"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "campaign "+r.Pattern) })
	}
	return mux
}

func TestCampaignRoutes(t *testing.T) {
	_, b := setup(t, func(c *Config) {
		c.Tokens = []string{"first-token"}
		c.Campaigns = stubCampaigns()
	})
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
		{"start is open", "GET", "/v1/start/l_x", false, 200, "campaign GET /v1/start/{LinkId}"},
		{"import", "POST", "/v1/batches", true, 200, "campaign POST /v1/batches"},
		{"list", "GET", "/v1/batches", true, 200, "campaign GET /v1/batches"},
		{"status", "GET", "/v1/batches/b_x", true, 200, "campaign GET /v1/batches/{BatchId}"},
		{"results", "GET", "/v1/batches/b_x/results", true, 200, "campaign GET /v1/batches/{BatchId}/results"},
		{"rerun", "POST", "/v1/batches/b_x/rerun", true, 200, "campaign POST /v1/batches/{BatchId}/{action}"},
		{"revoke", "POST", "/v1/links/l_x/revoke", true, 200, "campaign POST /v1/links/{LinkId}/revoke"},
		{"unknown action", "POST", "/v1/batches/b_x/explode", true, 404, "ResourceNotFound"},
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
