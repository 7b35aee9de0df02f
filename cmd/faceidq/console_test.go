package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/console"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/tasks"
)

// chromium returns the path of Debian's chromium: the test is skipped without it,
// unless CI is set (then it fails).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (.ci/run installs it)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// cspProbe records, in the page, every securitypolicyviolation event.
const cspProbe = `window.__csp = []; document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI), true);`

// TestConsoleInBrowser drives the operator console of a real `faceidq serve` in
// chromium: the token, a 200-row CSV campaign to 100 %, pipeline pause and resume,
// the job and dead-webhook pages, with no CSP violation and no console error; it
// takes a screenshot of each page at 1280 and 390 px (into docs/console when
// FACEIDQ_CONSOLE_SCREENSHOTS=1).
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	const tok = "console-token-0123456789"
	srv := redistest.Start(t, redistest.Options{})
	p := start(t, map[string]string{"FACEIDQ_API_TOKENS": tok, "REDIS_URL": srv.URL()}, "serve", "--listen", "127.0.0.1:0")
	base := "http://" + p.addr("api")
	api := &client{t: t, base: base, token: tok}

	t.Run("headers", func(t *testing.T) {
		for _, path := range []string{"/ui", "/ui/", "/ui/app.js", "/ui/app.css"} {
			r := api.do("GET", path, "")
			if r.status != 200 || r.header.Get("Content-Security-Policy") != console.ContentSecurityPolicy {
				t.Errorf("GET %s = %d, CSP %q", path, r.status, r.header.Get("Content-Security-Policy"))
			}
		}
		if r := api.do("GET", "/ui/nope.js", ""); r.status != 404 {
			t.Errorf("GET /ui/nope.js = %d", r.status)
		}
		if r := api.do("GET", "/v1/start/l_x", ""); r.header.Get("Content-Security-Policy") != "" {
			t.Errorf("/v1/start carries the console's CSP")
		}
		if r := (&client{t: t, base: base}).do("GET", "/v1/budgets", ""); r.status != 401 {
			t.Errorf("GET /v1/budgets without a token = %d", r.status)
		}
	})

	// A dead webhook to replay (the delivery itself is the webhook package's test).
	rdb := srv.Client(t)
	deadJob := tasks.NewJobID()
	payload := fmt.Sprintf(`{"id":"msg_%s","job_id":%q,"type":"token.succeeded","url":"https://hooks.example.com/faceidq","body":{"type":"token.succeeded"},"prior_attempts":8,"last_error":"HTTP 502: Bad Gateway"}`, deadJob[2:], deadJob)
	if err := rdb.HSet(t.Context(), keys.WebhookDeadPayloads, deadJob, payload).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(t.Context(), keys.WebhookDead, redis.Z{Score: float64(time.Now().UnixMilli()), Member: deadJob}).Err(); err != nil {
		t.Fatal(err)
	}

	csv := filepath.Join(t.TempDir(), "spring.csv")
	var b strings.Builder
	b.WriteString("redirect_url,extra,row_key\n")
	for i := range 200 {
		fmt.Fprintf(&b, "https://example.com/done,user-%d,row-%d\n", i, i)
		if i == 49 || i == 149 {
			b.WriteString("ftp://example.com/bad,bad,bad-" + fmt.Sprint(i) + "\n") // rejected lines 52 and 153
		}
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	shots := t.TempDir()
	if os.Getenv("FACEIDQ_CONSOLE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs", "console")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTime()

	var mu sync.Mutex
	var problems []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Source == "security" ||
				strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatal(err)
	}

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, p.stderr)
		}
	}
	wait := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, text)
		}
	}
	// goTo shows another view of the page (a hash change: no load event to wait for).
	goTo := func(hash string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash = `+strconv.Quote(hash))); err != nil {
			t.Fatalf("go to %s: %v", hash, err)
		}
	}
	// shoot takes the page at both widths and checks nothing overflows at 390 px.
	shoot := func(name string) {
		t.Helper()
		for _, w := range []int64{1280, 390} {
			do("viewport", chromedp.EmulateViewport(w, 900), chromedp.Sleep(2500*time.Millisecond)) // a poll redraws at the new width
			if w == 390 {
				over, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
				if err != nil || over {
					t.Errorf("%s overflows 390 px (%v)", name, err)
				}
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("%s-%d.png", name, w)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		do("viewport", chromedp.EmulateViewport(1280, 900))
	}

	// Sign in with the keyboard: the page asks for the token first.
	do("open the console", chromedp.Navigate(base+"/ui"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shoot("signin")
	do("enter the token", chromedp.SendKeys(chromedp.CSS("#token"), tok+kb.Enter))
	wait("the pipeline", `document.querySelector('#pl-badge').textContent === 'Running'`)
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('faceidq.token')`)); v != tok {
		t.Errorf("token in sessionStorage = %q", v)
	}

	// Import the campaign by upload.
	goTo("#campaigns")
	do("campaigns", chromedp.WaitVisible(chromedp.CSS("#imp-file")),
		chromedp.SetUploadFiles(chromedp.CSS("#imp-file"), []string{csv}),
		chromedp.SendKeys(chromedp.CSS("#imp-name"), "spring-kyc"),
		chromedp.Click(chromedp.CSS("#import-form button[type=submit]")))
	wait("the import summary", `/200 of 202 lines accepted/.test(document.querySelector('#imp-result').textContent)`)
	wait("the rejected lines", `[...document.querySelectorAll('#imp-result tbody tr td:first-child')].map(e => e.textContent).join(',') === '52,153'`)
	wait("the campaign list", `document.querySelector('#campaign-list a') !== null`)
	shoot("campaigns")

	// Watch it reach 100 %.
	do("open the campaign", chromedp.Click(chromedp.CSS("#campaign-list a")))
	wait("100 %", `document.querySelector('#cp-progress').value === 100 && /200 of 200 final/.test(document.querySelector('#cp-summary').textContent)`)
	do("count the codes", chromedp.Click(chromedp.CSS("#cp-tally")))
	wait("the codes", `/No job failed/.test(document.querySelector('#cp-codes').textContent)`)
	shoot("campaign")
	// A finished campaign says so, and offers nothing to pause or resume.
	wait("the campaign done", `document.querySelector('#cp-facts .badge').textContent === 'done' && document.querySelector('#cp-pause').disabled && document.querySelector('#cp-resume').disabled`)
	jobID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('/v1/batches/spring-kyc/results', {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('faceidq.token')}})
	  .then(r => r.text()).then(t => JSON.parse(t.split('\n')[0]).JobId)`, chromedp.EvalAwaitPromise))
	if err != nil || !tasks.ValidID("j_", jobID) {
		t.Fatalf("a JobId of the campaign: %q %v", jobID, err)
	}

	// Pause and resume the pipeline; the API agrees.
	goTo("#pipeline")
	wait("running", `document.querySelector('#pl-badge').textContent === 'Running' && !document.querySelector('#pl-pause').disabled`)
	do("pause", chromedp.Click(chromedp.CSS("#pl-pause")))
	wait("paused", `document.querySelector('#pl-badge').textContent === 'Paused' && /operator/.test(document.querySelector('#pl-detail').textContent)`)
	var st struct{ Paused bool }
	if r := api.do("GET", "/v1/pipeline", ""); json.Unmarshal(r.body, &st) != nil || !st.Paused {
		t.Fatalf("GET /v1/pipeline after the console paused = %s", r.body)
	}
	do("resume", chromedp.Click(chromedp.CSS("#pl-resume")))
	wait("running again", `document.querySelector('#pl-badge').textContent === 'Running'`)
	if r := api.do("GET", "/v1/pipeline", ""); json.Unmarshal(r.body, &st) != nil || st.Paused {
		t.Fatalf("GET /v1/pipeline after the console resumed = %s", r.body)
	}
	wait("a budget chart with campaign calls", `document.querySelectorAll('#budgets svg rect.b').length > 0`)
	shoot("pipeline")

	// A job as the API answers it.
	goTo("#job/" + jobID)
	wait("the job", `/"Status": "succeeded"/.test(document.querySelector('#job-out').textContent)`)
	shoot("job")

	// Dead webhooks: replay the one there.
	goTo("#webhooks")
	wait("the dead webhook", `document.querySelector('#wh-list button[data-replay]') !== null`)
	shoot("webhooks")
	do("replay", chromedp.Click(chromedp.CSS("#wh-list button[data-replay]")))
	wait("replayed", `/Replayed 1 webhook/.test(document.querySelector('#status').textContent) && /No dead webhook/.test(document.querySelector('#wh-list').textContent)`)

	do("forget the token", chromedp.Click(chromedp.CSS("#logout")))
	wait("the sign-in form", `!document.querySelector('#login').hidden && sessionStorage.getItem('faceidq.token') === null`)

	csp, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp`))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(csp) > 0 || len(problems) > 0 {
		t.Errorf("CSP violations %q; console errors %q", csp, problems)
	}
}
