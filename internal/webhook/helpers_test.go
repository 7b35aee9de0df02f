package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
	"github.com/redis/go-redis/v9"
)

// verifyStandardWebhook is a Standard Webhooks verifier written from the specification
// for these tests; it shares no code with the sender. It accepts the request when one
// of the space-separated "v1,<base64>" signatures is the HMAC-SHA256, keyed by the
// base64-decoded part of one of secrets after "whsec_", of "id.timestamp.body", and the
// timestamp is within tolerance of now.
func verifyStandardWebhook(secrets []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigHeader := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigHeader == "" {
		return errors.New("verifier: missing webhook-id, webhook-timestamp or webhook-signature")
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("verifier: timestamp %q is not unix seconds", ts)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("verifier: timestamp %d out of tolerance", unix)
	}
	signed := []byte(id + "." + ts + "." + string(body))
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			return fmt.Errorf("verifier: bad test secret: %v", err)
		}
		m := hmac.New(sha256.New, key)
		m.Write(signed)
		want := m.Sum(nil)
		for _, sig := range strings.Split(sigHeader, " ") {
			version, value, ok := strings.Cut(sig, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(value)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return errors.New("verifier: no valid signature")
}

// newSecretString returns a fresh "whsec_" secret of 32 random bytes.
func newSecretString(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// delivery is one request a receiver got.
type delivery struct {
	header    http.Header
	body      []byte
	verifyErr error
	status    int
}

// receiver is a webhook receiver on 127.0.0.1 that verifies every request with
// verifyStandardWebhook and answers as respond says (n counts requests from 1).
type receiver struct {
	srv     *httptest.Server
	secrets []string

	mu      sync.Mutex
	got     []delivery
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t testing.TB, secrets []string, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{secrets: secrets, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body := make([]byte, 0, 512)
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	d := delivery{header: r.Header.Clone(), body: body}
	d.verifyErr = verifyStandardWebhook(rc.secrets, r.Header, body, time.Now(), 5*time.Minute)
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	n := len(rc.got)
	respond := rc.respond
	rc.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if respond != nil {
		respond(n, sw, r)
	}
	rc.mu.Lock()
	rc.got[n-1].status = sw.status
	rc.mu.Unlock()
}

func (rc *receiver) setRespond(f func(n int, w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = f
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// status answers every request with code.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// memStore is a Store in memory.
type memStore struct {
	mu   sync.Mutex
	recs map[string][]tasks.Webhook
	err  error
}

func (s *memStore) RecordWebhook(_ context.Context, jobID string, w tasks.Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs == nil {
		s.recs = map[string][]tasks.Webhook{}
	}
	s.recs[jobID] = append(s.recs[jobID], w)
	return s.err
}

func (s *memStore) history(jobID string) []tasks.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tasks.Webhook(nil), s.recs[jobID]...)
}

func (s *memStore) statuses(jobID string) []string {
	var out []string
	for _, w := range s.history(jobID) {
		out = append(out, w.Status)
	}
	return out
}

func (s *memStore) last(jobID string) tasks.Webhook {
	h := s.history(jobID)
	if len(h) == 0 {
		return tasks.Webhook{}
	}
	return h[len(h)-1]
}

// memObserver records outcomes.
type memObserver struct {
	mu       sync.Mutex
	outcomes []string
}

func (o *memObserver) Delivered(outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, outcome)
}

func (o *memObserver) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.outcomes...)
}

// mapResolver resolves the names it holds and answers "not found" for others.
type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// resolverFunc adapts a function to Resolver.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func mustParseSecrets(t testing.TB, ss ...string) []Secret {
	t.Helper()
	secrets, err := ParseSecrets(strings.Join(ss, ","))
	if err != nil {
		t.Fatal(err)
	}
	return secrets
}

func mustParseAllow(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	p, err := ParseAllow(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testBundle is what setup returns besides the Sender.
type testBundle struct {
	secrets []string // the secret strings the sender signs with
	store   *memStore
	obs     *memObserver
	mr      *miniredis.Miniredis
	rdb     *redis.Client
}

// setup returns a Sender signing with one fresh secret, allowed to reach 127.0.0.1 (over
// http too), recording into a memStore and a memObserver, with its dead set on a
// miniredis. mutate may change the Config before New.
func setup(t testing.TB, mutate func(*Config, *testBundle)) (*Sender, *testBundle) {
	t.Helper()
	mr := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	b := &testBundle{
		secrets: []string{newSecretString(t)},
		store:   &memStore{},
		obs:     &memObserver{},
		mr:      mr,
		rdb:     rdb,
	}
	cfg := Config{
		Policy:         Policy{Allow: mustParseAllow(t, "127.0.0.1/32")},
		Timeout:        10 * time.Second,
		ConnectTimeout: 2 * time.Second,
		Redis:          rdb,
	}
	if mutate != nil {
		mutate(&cfg, b)
	}
	if cfg.Secrets == nil {
		cfg.Secrets = mustParseSecrets(t, b.secrets...)
	}
	s, err := New(cfg, b.store, b.obs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, b
}

// finalJob returns a succeeded job with a fixed finish time.
func finalJob(t testing.TB) *tasks.Job {
	t.Helper()
	created := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	finished := created.Add(1500 * time.Millisecond)
	expires := finished.Add(10 * time.Minute)
	return &tasks.Job{
		JobId:           tasks.NewJobID(),
		Status:          tasks.StatusSucceeded,
		BizToken:        "biz-token",
		VerificationURL: "https://verify.example/?token=biz-token",
		ExpiresAt:       &expires,
		Extra:           "extra",
		RequestId:       "req-1",
		Attempts:        1,
		CreatedAt:       created,
		FinishedAt:      &finished,
	}
}
