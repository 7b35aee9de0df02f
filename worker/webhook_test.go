package worker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/internal/webhook"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// TestWebhookRetriesNeverCallUpstreamAgain: a receiver that fails twice gets the event
// three times with one webhook-id, the job shows the delivery, and the upstream was
// called exactly once for the job.
func TestWebhookRetriesNeverCallUpstreamAgain(t *testing.T) {
	ctx := context.Background()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()

	secretKey := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(secretKey)
	var mu sync.Mutex
	var ids []string
	fails := 2
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		mac := hmac.New(sha256.New, secretKey)
		mac.Write([]byte(id + "." + ts + "." + string(body)))
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if !strings.Contains(r.Header.Get("webhook-signature"), want) || !strings.Contains(string(body), `"token.succeeded"`) {
			t.Errorf("bad delivery: sig %q body %s", r.Header.Get("webhook-signature"), body)
		}
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, id)
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	secrets, err := webhook.ParseSecrets(secret)
	if err != nil {
		t.Fatal(err)
	}
	policy := webhook.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, AllowHTTP: true}
	store := results.New(rdb, results.Config{})
	sender, err := webhook.New(webhook.Config{Secrets: secrets, Policy: policy, Redis: rdb,
		Schedule: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := &fakeUpstream{script: map[string][]error{}, calls: map[string]int{}, images: map[string]string{}}
	w, err := New(Config{Redis: rdb, Upstream: up, Limiter: &freeLimiter{}, Webhooks: sender})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	p, err := producer.New(producer.Config{Redis: rdb, CheckCallbackURL: func(ctx context.Context, u string) error {
		return webhook.ValidateURL(ctx, u, policy)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	u := "https://example.com/webhooked"
	job, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, CallbackURL: recv.URL + "/hook"}, producer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var j *tasks.Job
	waittest.UntilReason(t, 15*time.Second, "webhook delivered", func() (bool, string) {
		var err error
		j, err = store.Get(ctx, job.JobId)
		return err == nil && j.Webhook != nil && j.Webhook.Status == webhook.StatusDelivered, fmt.Sprintf("%+v %v", j, err)
	})
	if j.Webhook.Attempts != 3 {
		t.Fatalf("webhook attempts = %d, want 3", j.Webhook.Attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("deliveries' webhook-ids = %v, want three equal", ids)
	}
	if n := up.count(u); n != 1 {
		t.Fatalf("upstream called %d times for a job whose webhook was retried, want 1", n)
	}

	t.Run("callback refused when webhooks are off or the target is private", func(t *testing.T) {
		off, _ := producer.New(producer.Config{Redis: rdb})
		t.Cleanup(off.Close)
		if _, _, err := off.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, CallbackURL: "https://hooks.example.com/x"}, producer.Options{}); err == nil ||
			!strings.Contains(err.Error(), "webhooks are off") {
			t.Fatalf("Submit with webhooks off = %v", err)
		}
		strict, _ := producer.New(producer.Config{Redis: rdb, CheckCallbackURL: func(ctx context.Context, u string) error {
			return webhook.ValidateURL(ctx, u, webhook.Policy{})
		}})
		t.Cleanup(strict.Close)
		for _, target := range []string{"https://127.0.0.1/x", "https://10.0.0.1/x", "https://169.254.169.254/latest", "https://[::1]/x", "http://hooks.example.com/x"} {
			if _, _, err := strict.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, CallbackURL: target}, producer.Options{}); err == nil {
				t.Errorf("CallbackURL %s accepted", target)
			}
		}
	})
}
