package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
)

// TestServeWebhooks checks the wiring of FACEIDQ_WEBHOOK_SECRET and
// FACEIDQ_WEBHOOK_ALLOW: a job with a CallbackURL is accepted and its final state is
// POSTed there, signed with the secret.
func TestServeWebhooks(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	defer recv.Close()

	p := start(t, map[string]string{"FACEIDQ_WEBHOOK_SECRET": secret, "FACEIDQ_WEBHOOK_ALLOW": "127.0.0.1/32"},
		"serve", "--listen", "127.0.0.1:0")
	c := &client{t: t, base: "http://" + p.addr("api")}
	r := c.do("POST", "/v1/tokens", `{"RedirectURL":"https://example.com/done","CallbackURL":"`+recv.URL+`/hook"}`)
	if r.status != 202 && r.status != 200 {
		t.Fatalf("POST with CallbackURL = %d %s", r.status, r.body)
	}
	j := r.job(t)
	var d delivery
	select {
	case d = <-got:
	case <-time.After(60 * time.Second):
		t.Fatalf("no webhook within 60s\n%s", p.stderr)
	}
	var ev struct {
		Type string
		Data tasks.Job
	}
	if err := json.Unmarshal(d.body, &ev); err != nil || ev.Type != "token.succeeded" || ev.Data.JobId != j.JobId || ev.Data.VerificationURL == "" {
		t.Fatalf("webhook body %s: %v", d.body, err)
	}
	id, ts := d.header.Get("webhook-id"), d.header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(d.body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !strings.Contains(d.header.Get("webhook-signature"), want) {
		t.Fatalf("webhook-signature %q, want %q", d.header.Get("webhook-signature"), want)
	}
}

// TestEvictionWarning checks the start-up warning about maxmemory-policy.
func TestEvictionWarning(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Args: []string{"--maxmemory-policy", "allkeys-lru"}})
	p := start(t, map[string]string{"REDIS_URL": srv.URL()}, "api", "--listen", "127.0.0.1:0")
	p.addr("api")
	if !strings.Contains(p.stderr.String(), "maxmemory-policy is allkeys-lru") {
		t.Fatalf("no eviction warning:\n%s", p.stderr)
	}
}
