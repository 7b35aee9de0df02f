package simulator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/tc3"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// harness drives a Server directly through ServeHTTP with signed requests.
type harness struct {
	s     *Server
	clock *fakeClock
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	clock := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{s: s, clock: clock}
}

const goodBody = `{"RedirectURL":"https://example.com/cb"}`

// call describes one request; the zero call is a valid, correctly signed request.
type call struct {
	method  string            // default POST
	body    *string           // default goodBody
	headers map[string]string // set before signing; "" deletes
	cred    *tc3.Credential   // default the server's credential
	signAt  time.Time         // default the harness clock
	noSign  bool
	// signHost is the host header value signed, when not the request's own
	// ("127.0.0.1:9000"): "127.0.0.1" is what Tencent's Node.js SDK signs.
	signHost string
	ctx      context.Context
}

func str(s string) *string { return &s }

func (h *harness) send(t testing.TB, c call) *httptest.ResponseRecorder {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	body := goodBody
	if c.body != nil {
		body = *c.body
	}
	r := httptest.NewRequest(method, "http://127.0.0.1:9000/", strings.NewReader(body))
	if c.ctx != nil {
		r = r.WithContext(c.ctx)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", faceid.Action)
	r.Header.Set("X-TC-Version", faceid.APIVersion)
	r.Header.Set("X-TC-Region", "ap-singapore")
	for k, v := range c.headers {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	if !c.noSign {
		id, key := h.s.Credential()
		cred := tc3.Credential{SecretID: id, SecretKey: key}
		if c.cred != nil {
			cred = *c.cred
		}
		at := c.signAt
		if at.IsZero() {
			at = h.clock.Now()
		}
		host := r.Host
		if c.signHost != "" {
			r.Host = c.signHost
		}
		if err := tc3.Sign(r, []byte(body), faceid.Service, cred, at); err != nil {
			t.Fatalf("sign: %v", err)
		}
		r.Host = host
	}
	w := httptest.NewRecorder()
	h.s.ServeHTTP(w, r)
	return w
}

// envelope is the API's answer.
type envelope struct {
	Response struct {
		Error *struct {
			Code    string
			Message string
		}
		BizToken        string
		VerificationURL string
		RequestId       string
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$`)

// code sends c and returns the answer's error code, or "OK", checking the envelope.
func (h *harness) code(t testing.TB, c call) (string, envelope) {
	t.Helper()
	w := h.send(t, c)
	if w.Code == http.StatusBadGateway {
		return CodeHTML502, envelope{}
	}
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q, body %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var env envelope
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, w.Body)
	}
	if !uuidRE.MatchString(env.Response.RequestId) {
		t.Errorf("RequestId %q is not a UUID", env.Response.RequestId)
	}
	_, key := h.s.Credential()
	if strings.Contains(w.Body.String(), key) {
		t.Errorf("answer leaks the SecretKey: %s", w.Body)
	}
	if env.Response.Error != nil {
		if env.Response.BizToken != "" {
			t.Errorf("error answer with a BizToken: %s", w.Body)
		}
		return env.Response.Error.Code, env
	}
	return CodeOK, env
}
