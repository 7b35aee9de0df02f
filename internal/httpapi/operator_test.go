package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/faceidq/faceidq/internal/console"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/ratelimit"
	"github.com/faceidq/faceidq/tasks"
)

func TestOperatorRoutes(t *testing.T) {
	_, b := setup(t, func(c *Config) { c.Tokens = []string{"tok"} })
	auth := []string{"Authorization", "Bearer tok"}
	ctx := context.Background()

	t.Run("need a token but the console's assets", func(t *testing.T) {
		for _, path := range []string{"/v1/budgets", "/v1/webhooks/failed"} {
			if r := b.do(t, "GET", path, ""); r.status != 401 {
				t.Errorf("GET %s without a token = %d", path, r.status)
			}
		}
		for _, path := range []string{"/ui", "/ui/", "/ui/app.js", "/ui/app.css"} {
			r := b.do(t, "GET", path, "")
			if r.status != 200 || r.header.Get("Content-Security-Policy") != console.ContentSecurityPolicy || r.header.Get("Set-Cookie") != "" {
				t.Errorf("GET %s = %d %v", path, r.status, r.header)
			}
		}
		for _, path := range []string{"/ui/nope.js", "/ui/assets/app.js", "/ui/x/app.js"} {
			if r := b.do(t, "GET", path, ""); r.status != 404 {
				t.Errorf("GET %s = %d", path, r.status)
			}
		}
		if r := b.do(t, "POST", "/ui", ""); r.status != 405 {
			t.Errorf("POST /ui = %d", r.status)
		}
	})
	t.Run("budgets", func(t *testing.T) {
		lim, err := ratelimit.New(b.rdb, ratelimit.Config{Key: keys.Limiter("AKIDsecretsecret1234", "Act", "ep"), Rate: 20})
		if err != nil {
			t.Fatal(err)
		}
		if err := ratelimit.Announce(ctx, b.rdb, ratelimit.Budget{Key: keys.Limiter("AKIDsecretsecret1234", "Act", "ep"),
			Account: ratelimit.MaskAccount("AKIDsecretsecret1234"), Action: "Act", Endpoint: "ep", Rate: 20}); err != nil {
			t.Fatal(err)
		}
		if _, err := lim.Wait(ctx, ratelimit.Interactive); err != nil {
			t.Fatal(err)
		}
		r := b.do(t, "GET", "/v1/budgets?seconds=10", "", auth...)
		var got struct{ Budgets []BudgetUse }
		if r.status != 200 || json.Unmarshal(r.body, &got) != nil || len(got.Budgets) != 1 || len(got.Budgets[0].Seconds) != 10 ||
			got.Budgets[0].Rate != 20 || strings.Contains(string(r.body), "secretsecret") {
			t.Fatalf("GET /v1/budgets = %d %s", r.status, r.body)
		}
		var calls int64
		for _, s := range got.Budgets[0].Seconds {
			calls += s.Interactive
		}
		if calls != 1 {
			t.Errorf("calls %d in %s", calls, r.body)
		}
		for _, q := range []string{"0", "301", "x"} {
			if r := b.do(t, "GET", "/v1/budgets?seconds="+q, "", auth...); r.status != 400 {
				t.Errorf("seconds=%s = %d", q, r.status)
			}
		}
	})
	t.Run("dead webhooks", func(t *testing.T) {
		if r := b.do(t, "GET", "/v1/webhooks/failed", "", auth...); r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("empty list = %d %s", r.status, r.body)
		}
		for _, id := range []string{tasks.NewJobID(), "nope"} {
			r := b.do(t, "POST", "/v1/webhooks/failed/"+id+"/replay", "", auth...)
			if r.status != 404 || r.envelope(t).Error.Code != CodeWebhookNotFound {
				t.Errorf("replay %s = %d %s", id, r.status, r.body)
			}
		}
		if r := b.do(t, "POST", "/v1/webhooks/failed/replay", "", auth...); r.status != 200 || !strings.Contains(string(r.body), `"Replayed":0`) {
			t.Errorf("replay all = %d %s", r.status, r.body)
		}
		if r := b.do(t, "GET", "/v1/webhooks/failed/replay", "", auth...); r.status != 405 {
			t.Errorf("GET on replay all = %d", r.status)
		}
	})
}
