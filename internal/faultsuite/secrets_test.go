package faultsuite

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// Recognisable secrets of TestSecretsNeverLeak.
const (
	leakSecretID  = "AKIDfaultsuiteLeakCheck000000000001"
	leakSecretKey = "FaultSuiteSecretKey7q3Zx9Lw2Vb8Kd4M"
	leakToken     = "fq-api-token-9Xh2Lq7Rz4Tw8Np3"
	leakWebhookKy = "FaultSuiteWebhookKey-kP3mW8xQ2zR7" // 32 bytes
	imageMarker   = "FAULTSUITE-BIOMETRIC-IMAGE-BYTES"
)

// receiver is a local webhook endpoint recording every delivery.
type receiver struct {
	mu     sync.Mutex
	bodies []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var h strings.Builder
	_ = req.Header.Write(&h)
	r.mu.Lock()
	r.bodies = append(r.bodies, h.String()+"\n"+string(b))
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// image returns the base64 of job i's recognisable image bytes.
func image(i int) string {
	raw := "\xff\xd8\xff\xe0" + strings.Repeat(fmt.Sprintf("%s-%03d-", imageMarker, i), 200)
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

// TestSecretsNeverLeak runs api and worker at debug log level with bearer tokens, a
// webhook secret, a recognisable SecretKey (the simulator configured with the same
// credentials) and jobs carrying a recognisable CompareImageBase64, succeeding and
// failing, delivered by webhook to an allow-listed local receiver. Then it greps
// everything an operator or a caller can see — process output, HTTP answers, result
// hashes, asynq task hashes, webhook deliveries, /metrics — for the SecretKey, the
// token, the webhook secret (and its key) and the image bytes. It also checks that
// images have a TTL and are deleted when their job ends, that final results have a
// TTL, and that JobIds are 128-bit random.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	rcv := &receiver{}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	whsec := "whsec_" + base64.StdEncoding.EncodeToString([]byte(leakWebhookKy))
	s := newStack(t, stackOptions{
		sim: simulator.Config{SecretID: leakSecretID, SecretKey: leakSecretKey},
		env: map[string]string{
			"FACEIDQ_API_TOKENS":     "other-token-aaaaaaaaaaaa," + leakToken,
			"FACEIDQ_WEBHOOK_SECRET": whsec,
			"FACEIDQ_WEBHOOK_ALLOW":  "127.0.0.1/32",
			"FACEIDQ_LOG_LEVEL":      "debug",
		},
	})
	api := s.api(t, "api", nil)
	w := s.worker(t, "worker", nil)
	ctx := context.Background()
	var seen strings.Builder // everything visible
	record := func(what string, a answer) {
		fmt.Fprintf(&seen, "\n== %s: %d\n", what, a.status)
		_ = a.header.Write(&seen)
		seen.WriteString(a.body)
	}
	call := func(what, method, path, token, body string, header ...string) answer {
		t.Helper()
		a, err := do(ctx, method, api.url+path, token, body, header...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		record(what, a)
		return a
	}
	jobJSON := func(i int, extra string) string {
		return fmt.Sprintf(`{"RedirectURL":"https://example.com/done","CompareImageBase64":%q,"CallbackURL":%q%s}`,
			image(i), hook.URL+"/hook", extra)
	}

	// Pause first so that the images wait in Redis and their TTL can be seen.
	if a := call("pause", http.MethodPost, "/v1/pipeline/pause", leakToken, ""); a.status/100 != 2 {
		t.Fatalf("pause: HTTP %d %s", a.status, a.body)
	}
	var ids []string
	idRE := regexp.MustCompile(`^j_[a-z2-7]{26}$`)
	for i := range 10 {
		id, a, err := submit(ctx, api.url, leakToken, jobJSON(i, ""))
		if err != nil || id == "" {
			t.Fatalf("submit: %v HTTP %d %s", err, a.status, a.body)
		}
		record("submit", a)
		if !idRE.MatchString(id) {
			t.Errorf("JobId %q does not match %s (128 random bits)", id, idRE)
		}
		ids = append(ids, id)
	}
	// Refused requests carrying an image: the image must not be echoed.
	call("bad RedirectURL with image", http.MethodPost, "/v1/tokens", leakToken,
		fmt.Sprintf(`{"RedirectURL":"nope","CompareImageBase64":%q}`, image(98)))
	call("unknown field with image", http.MethodPost, "/v1/tokens", leakToken,
		fmt.Sprintf(`{"RedirectURL":"https://example.com/done","CompareImageBase64":%q,"Bogus":%q}`, image(99), image(99)))
	call("no token", http.MethodPost, "/v1/tokens", "", jobJSON(97, ""))
	call("wrong token", http.MethodPost, "/v1/tokens", leakToken+"x", jobJSON(96, ""))

	imgKeys := s.rdb.Keys(ctx, "faceidq:image:*").Val()
	if len(imgKeys) != len(ids) {
		t.Errorf("%d image keys for %d jobs with distinct images", len(imgKeys), len(ids))
	}
	for _, k := range imgKeys {
		if ttl := s.rdb.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("image key %s has no TTL (%v)", k, ttl)
		}
	}
	call("resume", http.MethodPost, "/v1/pipeline/resume", leakToken, "")
	waitFinal(t, s.rdb, ids, time.Minute)

	// Failing jobs: the upstream refuses the image for good.
	s.sim.setFaults(t, simulator.Faults{AccountError: "InvalidParameter.EngineImageDecodeFailed"})
	var failing []string
	for i := 10; i < 15; i++ {
		id, a, err := submit(ctx, api.url, leakToken, jobJSON(i, `,"Extra":"fails"`))
		if err != nil || id == "" {
			t.Fatalf("submit: %v HTTP %d %s", err, a.status, a.body)
		}
		record("submit failing", a)
		failing = append(failing, id)
	}
	js := waitFinal(t, s.rdb, failing, time.Minute)
	if c := census(js); c[string(tasks.StatusFailed)] != len(failing) {
		t.Errorf("want the %d jobs refused by the upstream failed, got %v", len(failing), c)
	}
	ids = append(ids, failing...)
	waittest.UntilReason(t, time.Minute, "a webhook for every job", func() (bool, string) {
		return rcv.count() >= len(ids), fmt.Sprint(rcv.count())
	})

	for _, id := range ids {
		call("get", http.MethodGet, "/v1/tokens/"+id, leakToken, "")
		call("wait", http.MethodGet, "/v1/tokens/"+id, leakToken, "", "Prefer", "wait=1")
		rec := s.rdb.HGetAll(ctx, keys.Result(id)).Val()
		fmt.Fprintf(&seen, "\n== result %s\n%v", id, rec)
		if ttl := s.rdb.PTTL(ctx, keys.Result(id)).Val(); ttl <= 0 {
			t.Errorf("result of final job %s has no TTL (%v)", id, ttl)
		}
	}
	for _, k := range s.rdb.Keys(ctx, "asynq:*").Val() {
		if s.rdb.Type(ctx, k).Val() == "hash" {
			fmt.Fprintf(&seen, "\n== %s\n%v", k, s.rdb.HGetAll(ctx, k).Val())
		}
	}
	if n, _ := countKeys(ctx, s.rdb, "faceidq:image:*"); n != 0 {
		t.Errorf("%d image keys remain after every job ended", n)
	}
	call("pipeline", http.MethodGet, "/v1/pipeline", leakToken, "")
	call("readyz", http.MethodGet, "/readyz", leakToken, "")
	call("api metrics", http.MethodGet, "/metrics", leakToken, "")
	if a, err := do(ctx, http.MethodGet, w.url+"/metrics", leakToken, ""); err == nil {
		record("worker metrics", a)
	} else {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	for _, b := range rcv.bodies {
		fmt.Fprintf(&seen, "\n== webhook\n%s", b)
	}
	rcv.mu.Unlock()
	for _, p := range []*node{api, w} {
		if code := term(t, p.Proc, 30*time.Second); code != 0 {
			t.Errorf("%s exited %d", p.Name, code)
		}
		fmt.Fprintf(&seen, "\n== %s output\n%s", p.Name, p.Out.String())
	}

	all := seen.String()
	if !strings.Contains(all, `"level":"debug"`) {
		t.Error("no debug line was captured: the scenario did not run at debug level")
	}
	img := image(3)
	secrets := map[string]string{
		"SecretKey":                   leakSecretKey,
		"bearer token":                leakToken,
		"webhook secret":              whsec,
		"webhook key (base64)":        strings.TrimPrefix(whsec, "whsec_"),
		"webhook key":                 leakWebhookKy,
		"webhook key (hex)":           hex.EncodeToString([]byte(leakWebhookKy)),
		"image bytes":                 imageMarker,
		"image base64":                img,
		"image base64 (40 chars)":     img[400:440],
		"image base64 (escaped JSON)": strings.ReplaceAll(img[400:440], "/", `\/`),
	}
	for what, secret := range secrets {
		if i := strings.Index(all, secret); i >= 0 {
			t.Errorf("the %s appears in what the scenario shows: …%s…", what, all[max(0, i-200):i])
		}
	}
	t.Logf("grepped %d KiB (process output at debug level, %d HTTP answers and webhooks, results, asynq tasks, metrics): "+
		"no secret, token or image byte", len(all)>>10, strings.Count(all, "\n== "))
}
