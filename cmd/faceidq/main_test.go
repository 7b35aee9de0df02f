package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/httpapi"
	"github.com/faceidq/faceidq/internal/proctest"
	"github.com/faceidq/faceidq/tasks"
)

// program is one in-process run of the real program.
type program struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan int
	stdout *syncBuffer
	stderr *syncBuffer

	mu    sync.Mutex
	addrs map[string]string
	bound chan struct{} // signalled on every new address
}

// syncBuffer is a bytes.Buffer safe for a writer and readers.
type syncBuffer = proctest.Output

func getenvFrom(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// start runs the program with args and env until the test ends (or stop).
func start(t *testing.T, env map[string]string, args ...string) *program {
	t.Helper()
	p := &program{t: t, done: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{},
		addrs: map[string]string{}, bound: make(chan struct{}, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	ctx = context.WithValue(ctx, listenHookKey{}, listenHook(func(name, addr string) {
		p.mu.Lock()
		p.addrs[name] = addr
		p.mu.Unlock()
		select {
		case p.bound <- struct{}{}:
		default:
		}
	}))
	go func() { p.done <- run(ctx, args, getenvFrom(env), p.stdout, p.stderr) }()
	t.Cleanup(func() {
		if code := p.stop(); code != 0 {
			t.Errorf("faceidq %s exited %d\n%s", args[0], code, p.stderr)
		}
	})
	return p
}

// stop cancels the program and returns its exit code (once; later calls return 0).
func (p *program) stop() int {
	p.cancel()
	select {
	case code, ok := <-p.done:
		if ok {
			close(p.done)
		}
		return code
	case <-time.After(60 * time.Second):
		p.t.Fatalf("the program did not stop within 60s\n%s", p.stderr)
	}
	return -1
}

// addr waits until the program has bound listener name and returns its address.
func (p *program) addr(name string) string {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		p.mu.Lock()
		a := p.addrs[name]
		p.mu.Unlock()
		if a != "" {
			return a
		}
		select {
		case <-p.bound:
		case code := <-p.done:
			p.t.Fatalf("the program exited %d before listening on %s\n%s", code, name, p.stderr)
		case <-deadline:
			p.t.Fatalf("the program did not listen on %s within 30s\n%s", name, p.stderr)
		}
	}
}

// client talks to a program's HTTP listener.
type client struct {
	t     *testing.T
	base  string
	token string
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c *client) do(method, path, body string, headers ...string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json") // a test may give its own
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func (a answer) job(t *testing.T) *tasks.Job {
	t.Helper()
	var j tasks.Job
	if err := json.Unmarshal(a.body, &j); err != nil || j.JobId == "" {
		t.Fatalf("answer %d %s is not a job", a.status, a.body)
	}
	return &j
}

func (a answer) envelope(t *testing.T) httpapi.Envelope {
	t.Helper()
	var e httpapi.Envelope
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("answer %d %s is not an error envelope", a.status, a.body)
	}
	return e
}

const okBody = `{"RedirectURL":"https://example.com/done"}`

func TestServeEmbedded(t *testing.T) {
	p := start(t, map[string]string{}, "serve", "--listen", "127.0.0.1:0")
	c := &client{t: t, base: "http://" + p.addr("api")}

	r := c.do("POST", "/v1/tokens", okBody, "Prefer", "wait=10")
	j := r.job(t)
	if r.status != http.StatusOK || j.Status != tasks.StatusSucceeded || !strings.HasPrefix(j.VerificationURL, "http://127.0.0.1:") || j.BizToken == "" {
		t.Fatalf("POST with wait = %d %s", r.status, r.body)
	}
	if r.header.Get("Preference-Applied") != "wait=10" || r.header.Get("Location") != "/v1/tokens/"+j.JobId {
		t.Fatalf("headers %v", r.header)
	}
	if g := c.do("GET", "/v1/tokens/"+j.JobId, ""); g.status != 200 || g.job(t).VerificationURL != j.VerificationURL {
		t.Fatalf("GET = %d %s", g.status, g.body)
	}
	logs := p.stderr.String()
	for _, line := range []string{"REDIS_URL is unset", "TENCENTCLOUD_SECRET_ID is unset", "FACEIDQ_API_TOKENS is unset"} {
		if n := strings.Count(logs, line); n != 1 {
			t.Errorf("%d log lines announce %q, want 1\n%s", n, line, logs)
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if !strings.Contains(p.stderr.String(), "worker stopped") {
		t.Errorf("no clean worker shutdown in the log:\n%s", p.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	redis := "redis://127.0.0.1:1/0"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no command", nil, nil, "no command"},
		{"unknown command", nil, []string{"frobnicate"}, "unknown command"},
		{"unknown flag", nil, []string{"serve", "--nope"}, "flag provided but not defined: -nope"},
		{"flag without value", nil, []string{"serve", "--listen"}, "flag needs an argument"},
		{"api without redis", nil, []string{"api"}, "REDIS_URL (--redis-url) is required"},
		{"worker without redis", nil, []string{"worker"}, "REDIS_URL (--redis-url) is required"},
		{"bad redis url", map[string]string{"REDIS_URL": "http://x"}, []string{"api"}, "REDIS_URL (--redis-url): redisconn: invalid REDIS_URL: unknown scheme"},
		{"bad redis url hides password", map[string]string{"REDIS_URL": "redis://u:hunter2@h:abc"}, []string{"api"}, "invalid port"},
		{"bad redis flag", nil, []string{"serve", "--redis-url", "nope"}, "--redis-url: redisconn"},
		{"bad rate", map[string]string{"FACEIDQ_RATE": "fast"}, []string{"serve"}, `FACEIDQ_RATE (--rate): "fast" is not a positive number`},
		{"zero rate", nil, []string{"serve", "--rate", "0"}, "--rate"},
		{"bad region", map[string]string{"FACEIDQ_REGION": "mars-1"}, []string{"serve"}, "FACEIDQ_REGION"},
		{"bad ttl", map[string]string{"FACEIDQ_RESULT_TTL": "1 day"}, []string{"serve"}, "FACEIDQ_RESULT_TTL"},
		{"bad listen", map[string]string{"FACEIDQ_LISTEN": "8080"}, []string{"serve"}, "FACEIDQ_LISTEN"},
		{"bad metrics listen", nil, []string{"worker", "--redis-url", redis, "--metrics-listen", "x"}, "--metrics-listen"},
		{"secret id alone", map[string]string{"TENCENTCLOUD_SECRET_ID": "AKIDx"}, []string{"serve"}, "must be set together"},
		{"worker without credentials", map[string]string{"REDIS_URL": redis}, []string{"worker"}, "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are required"},
		{"bad endpoint", map[string]string{"FACEIDQ_ENDPOINT": "ftp://x/y"}, []string{"serve"}, "FACEIDQ_ENDPOINT"},
		{"empty tokens", map[string]string{"FACEIDQ_API_TOKENS": " , "}, []string{"serve"}, "holds no token"},
		{"bad webhook secret", map[string]string{"FACEIDQ_WEBHOOK_SECRET": "nope"}, []string{"serve"}, "FACEIDQ_WEBHOOK_SECRET"},
		{"bad webhook allow", map[string]string{"FACEIDQ_WEBHOOK_ALLOW": "10.0.0.0/99"}, []string{"serve"}, "FACEIDQ_WEBHOOK_ALLOW"},
		{"bad log level", map[string]string{"FACEIDQ_LOG_LEVEL": "loud"}, []string{"serve"}, "FACEIDQ_LOG_LEVEL"},
		{"bad concurrency", nil, []string{"serve", "--concurrency", "-3"}, "--concurrency"},
		{"extra argument", nil, []string{"serve", "now"}, "unexpected argument"},
		{"enqueue missing file", map[string]string{"REDIS_URL": redis}, []string{"enqueue", "--file", "/nonexistent/users.csv"}, "--file: stat /nonexistent/users.csv"},
		{"enqueue file and a job flag", nil, []string{"enqueue", "--file", "users.csv", "--redirect-url", "https://x/y"}, "--redirect-url is for one job"},
		{"enqueue link ttl without links", nil, []string{"enqueue", "--file", "users.csv", "--link-ttl", "1h"}, "--link-ttl needs --links"},
		{"enqueue bad link ttl", nil, []string{"enqueue", "--file", "users.csv", "--links", "--link-ttl", "soon"}, "--link-ttl"},
		{"enqueue no-wait without file", nil, []string{"enqueue", "--redirect-url", "https://x/y", "--no-wait"}, "need --file"},
		{"enqueue batch without file", nil, []string{"enqueue", "--redirect-url", "https://x/y", "--batch", "b"}, "--batch needs --file"},
		{"batch without subcommand", nil, []string{"batch"}, "want a subcommand"},
		{"batch unknown subcommand", nil, []string{"batch", "explode", "x"}, "unknown subcommand"},
		{"batch status without campaign", nil, []string{"batch", "status"}, "want one campaign"},
		{"batch list with argument", nil, []string{"batch", "list", "x"}, "unexpected argument"},
		{"batch watch on cancel", nil, []string{"batch", "cancel", "x", "--watch"}, "--watch is for batch status"},
		{"batch canceled on pause", nil, []string{"batch", "pause", "x", "--canceled"}, "--canceled is for batch rerun"},
		{"batch without redis", nil, []string{"batch", "list"}, "REDIS_URL"},
		{"export without batch", nil, []string{"export"}, "--batch is required"},
		{"export bad format", nil, []string{"export", "--batch", "x", "--format", "xml"}, "--format"},
		{"export bad public url", nil, []string{"export", "--batch", "x", "--public-url", "kyc.example.com"}, "--public-url"},
		{"webhook without subcommand", nil, []string{"webhook"}, "want a subcommand"},
		{"webhook unknown subcommand", nil, []string{"webhook", "resend"}, "unknown subcommand"},
		{"webhook replay bad id", nil, []string{"webhook", "replay", "x"}, "is not a JobId"},
		{"webhook replay id and all", nil, []string{"webhook", "replay", "--all", "j_x"}, "not both"},
		{"webhook replay nothing", nil, []string{"webhook", "replay"}, "want one JobId, or --all"},
		{"bad public url", map[string]string{"FACEIDQ_PUBLIC_URL": "ftp://kyc.example.com"}, []string{"serve"}, "FACEIDQ_PUBLIC_URL"},
		{"public url with query", nil, []string{"api", "--redis-url", redis, "--public-url", "https://kyc.example.com/?a=1"}, "--public-url"},
		{"enqueue without redirect", map[string]string{"REDIS_URL": redis}, []string{"enqueue"}, "--redirect-url is required"},
		{"enqueue bad config", map[string]string{"REDIS_URL": redis}, []string{"enqueue", "--redirect-url", "https://x/y", "--config", `{"CheckMod":1}`}, "Config.CheckMod"},
		{"status without id", nil, []string{"status"}, "exactly one JobId"},
		{"status bad id", nil, []string{"status", "../etc"}, "is not a JobId"},
		{"pause without redis", nil, []string{"pause"}, "REDIS_URL"},
		{"simulate bad rate", nil, []string{"simulate", "--rate", "x"}, "--rate"},
		{"help unknown", nil, []string{"help", "nope"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, getenvFrom(tt.env), &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Fatalf("stderr %q, want one line containing %q", stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Fatal("stderr leaks the password")
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"serve", "worker", "api", "simulate", "enqueue", "status", "pause", "resume", "batch status|list|pause|resume|weight|cancel|rerun", "export --batch", "webhook failed | replay", "REDIS_URL", "FACEIDQ_WEBHOOK_ALLOW", "FACEIDQ_PUBLIC_URL"}},
		{[]string{"batch", "-h"}, []string{"-watch", "-canceled", "-redis-url"}},
		{[]string{"help", "export"}, []string{"-batch", "-format", "-out", "-public-url"}},
		{[]string{"webhook", "-h"}, []string{"-all", "-redis-url"}},
		{[]string{"--help"}, []string{"Commands:"}},
		{[]string{"serve", "-h"}, []string{"-redis-url", "REDIS_URL", "-listen", "FACEIDQ_LISTEN", "-metrics-listen", "-api-tokens", "-webhook-secret", "-webhook-allow", "-result-ttl", "-rate", "-region", "-endpoint", "-secret-id", "-secret-key", "-log-level", "-public-url", "FACEIDQ_PUBLIC_URL"}},
		{[]string{"help", "worker"}, []string{"-concurrency", "-metrics-listen"}},
		{[]string{"api", "--help"}, []string{"-listen", "-api-tokens"}},
		{[]string{"enqueue", "-h"}, []string{"-redirect-url", "-file", "-wait", "-batch", "-links", "-link-ttl", "-no-wait"}},
		{[]string{"simulate", "-h"}, []string{"-internal-error-rate", "-account-error"}},
		{[]string{"status", "-h"}, []string{"-wait"}},
		{[]string{"pause", "-h"}, []string{"-redis-url"}},
		{[]string{"version"}, []string{"faceidq "}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, getenvFrom(nil), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

func TestFlagWinsOverEnv(t *testing.T) {
	p := start(t, map[string]string{"FACEIDQ_LISTEN": "not-an-address", "FACEIDQ_LOG_LEVEL": "loud"},
		"serve", "--listen", "127.0.0.1:0", "--log-level", "warn")
	c := &client{t: t, base: "http://" + p.addr("api")}
	if r := c.do("GET", "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz = %d", r.status)
	}
	if strings.Contains(p.stderr.String(), `"level":"info"`) {
		t.Fatalf("--log-level warn did not win over FACEIDQ_LOG_LEVEL:\n%s", p.stderr)
	}
}

func TestSimulate(t *testing.T) {
	p := start(t, map[string]string{"FACEIDQ_LISTEN": "127.0.0.1:0"}, "simulate", "--rate", "5")
	c := &client{t: t, base: "http://" + p.addr("simulator")}
	r := c.do("GET", "/_sim/stats", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"rate": 5`) {
		t.Fatalf("GET /_sim/stats = %d %s", r.status, r.body)
	}
	// The simulator answers an unsigned call as the real gateway does.
	if r := c.do("POST", "/", okBody); r.status != 200 || !strings.Contains(string(r.body), `"Error"`) {
		t.Fatalf("unsigned call = %d %s", r.status, r.body)
	}
}
