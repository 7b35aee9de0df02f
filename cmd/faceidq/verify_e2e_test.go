package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/faceidtest"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/tasks"
)

// flowClock is the simulator's flow clock: the test moves it days ahead.
type flowClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *flowClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *flowClock) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// hooks receives webhooks and keeps their bodies.
type hooks struct {
	mu     sync.Mutex
	bodies [][]byte
	byJob  map[string][]string // verification statuses announced, by JobId
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var ev struct {
		Type string
		Data tasks.Job
	}
	_ = json.Unmarshal(b, &ev)
	h.mu.Lock()
	h.bodies = append(h.bodies, b)
	if ev.Type == "verification.completed" && ev.Data.Verification != nil {
		h.byJob[ev.Data.JobId] = append(h.byJob[ev.Data.JobId], string(ev.Data.Verification.Status))
	}
	h.mu.Unlock()
}

var personClient = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// hop GETs u and returns its redirect target.
func hop(t *testing.T, u string) string {
	t.Helper()
	resp, err := personClient.Get(u)
	if err != nil {
		t.Errorf("GET %s: %v", u, err)
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("GET %s = %d, want 302", u, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// TestVerificationFlow runs `faceidq api` and `faceidq worker` against a real
// redis-server and the simulator: 200 FetchResult jobs go through the person's flow
// with a seeded mix of outcomes, and every job's Verification must match what the
// simulator recorded, each action within its own 20/s at the simulator, and the
// person's media nowhere.
func TestVerificationFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	clock := &flowClock{}
	sim := faceidtest.Start(t, simulator.Config{FlowNow: clock.Now})
	sim.SetPublicURL(sim.URL)
	h := &hooks{byJob: map[string][]string{}}
	recv := httptest.NewServer(h)
	defer recv.Close()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	common := map[string]string{"REDIS_URL": srv.URL(), "FACEIDQ_WEBHOOK_SECRET": secret, "FACEIDQ_WEBHOOK_ALLOW": "127.0.0.1/32"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	api := start(t, with(nil), "api", "--listen", "127.0.0.1:0")
	wrk := start(t, with(map[string]string{"TENCENTCLOUD_SECRET_ID": sim.SecretID, "TENCENTCLOUD_SECRET_KEY": sim.SecretKey,
		"FACEIDQ_ENDPOINT": sim.URL, "FACEIDQ_VERIFY_SWEEP": "5s", "FACEIDQ_RESULT_TTL": "1h"}), "worker")
	c := &client{t: t, base: "http://" + api.addr("api")}

	const n = 200
	type person struct {
		job   *tasks.Job
		group int
	}
	people := make([]person, n)
	var answers bytes.Buffer
	var amu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 40)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"RedirectURL":"https://app.example.com/done?i=%d","FetchResult":true,"CallbackURL":"%s/hook"}`, i, recv.URL)
			r := c.do("POST", "/v1/tokens", body, "Prefer", "wait=30")
			j := r.job(t)
			if j.Status != tasks.StatusSucceeded || !j.FetchResult {
				t.Errorf("job %d = %d %s", i, r.status, r.body)
				return
			}
			people[i] = person{job: j, group: i % 10}
			switch g := i % 10; {
			case g <= 5 || g == 9: // the browser: the simulator's page, then faceidq's return page
				u := j.VerificationURL
				if g == 9 {
					u += "&outcome=abandon"
				}
				ret := hop(t, u)
				if !strings.HasPrefix(ret, c.base+"/v1/return/"+j.JobId+"?") {
					t.Errorf("job %d: the simulator sent the person to %q", i, ret)
					return
				}
				final := hop(t, ret)
				if want := fmt.Sprintf("https://app.example.com/done?i=%d&token=%s", i, j.BizToken); final != want {
					t.Errorf("job %d: the return page sent the person to %q, want %q", i, final, want)
				}
			case g == 6: // completed by the test, then the person comes back
				resp, err := http.Post(sim.URL+"/_sim/complete", "application/json",
					strings.NewReader(`{"BizToken":"`+j.BizToken+`","ErrorCode":1004,"Similarity":41.5}`))
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("complete %d: %v %v", i, resp, err)
					return
				}
				resp.Body.Close()
				hop(t, c.base+"/v1/return/"+j.JobId+"?token="+url.QueryEscape(j.BizToken))
			case g == 7: // abandoned: never came back
				resp, err := http.Post(sim.URL+"/_sim/complete", "application/json",
					strings.NewReader(`{"BizToken":"`+j.BizToken+`","Abandon":true}`))
				if err == nil {
					resp.Body.Close()
				}
			case g == 8: // left to expire: never opened
			}
			amu.Lock()
			answers.Write(r.body)
			amu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.Fatalf("the flows failed\n%s", wrk.stderr)
	}

	// expected returns what the simulator recorded of a person's flow.
	expected := func(p person) (tasks.VerificationStatus, *int64, *float64) {
		f, ok := sim.Flow(p.job.BizToken)
		switch {
		case !ok:
			t.Fatalf("the simulator has no flow for %s", p.job.BizToken)
		case f.Completed && f.ErrorCode == 0:
			return tasks.VerificationPassed, &f.ErrorCode, &f.Similarity
		case f.Completed:
			return tasks.VerificationFailed, &f.ErrorCode, &f.Similarity
		}
		return tasks.VerificationIncomplete, nil, nil
	}
	wait := func(p person, want tasks.VerificationStatus) *tasks.Job {
		deadline := time.Now().Add(60 * time.Second)
		for {
			r := c.do("GET", "/v1/tokens/"+p.job.JobId, "")
			j := r.job(t)
			if j.Verification != nil && j.Verification.Status == want {
				amu.Lock()
				answers.Write(r.body)
				amu.Unlock()
				return j
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s (group %d): verification %+v, want %s\n%s", j.JobId, p.group, j.Verification, want, wrk.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	counts := map[tasks.VerificationStatus]int{}
	for _, p := range people {
		status, code, sim := expected(p)
		j := wait(p, status)
		v := j.Verification
		counts[status]++
		if (code == nil) != (v.ErrorCode == nil) || (code != nil && *code != *v.ErrorCode) ||
			(sim == nil) != (v.Similarity == nil) || (sim != nil && *sim != *v.Similarity) {
			t.Errorf("job %s (group %d): verification %+v, simulator %v %v", j.JobId, p.group, v, code, sim)
		}
	}
	t.Logf("outcomes: %v", counts)
	if counts[tasks.VerificationPassed] == 0 || counts[tasks.VerificationFailed] == 0 || counts[tasks.VerificationIncomplete] == 0 {
		t.Fatalf("the mix lacks an outcome: %v", counts)
	}

	// The tokens left alone, three days later: expired.
	clock.Add(72*time.Hour + time.Minute)
	for _, p := range people {
		if p.group != 8 {
			continue
		}
		r := c.do("POST", "/v1/tokens/"+p.job.JobId+"/verification", "", "Prefer", "wait=20")
		j := r.job(t)
		if r.status != http.StatusOK || j.Verification.Status != tasks.VerificationExpired {
			t.Fatalf("late fetch of %s = %d %s", p.job.JobId, r.status, r.body)
		}
		answers.Write(r.body)
	}

	// Every verification announced by webhook.
	deadline := time.Now().Add(60 * time.Second)
	for {
		h.mu.Lock()
		missing, detail := 0, ""
		for _, p := range people {
			got := h.byJob[p.job.JobId]
			want, _, _ := expected(p)
			if p.group == 8 {
				want = tasks.VerificationExpired
			}
			if !slices.Contains(got, string(want)) {
				missing++
				detail += fmt.Sprintf(" %s group %d got %v want %s;", p.job.JobId, p.group, got, want)
			}
		}
		h.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs lack their verification.completed webhook:%s", missing, detail)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Each action within its own 20 in any sliding second at the simulator. This test
	// runs the API, the workers and the simulator in one race-instrumented process next
	// to other test packages on a shared machine, where a process can stall between its
	// slot's last check and its send: as in faultsuite's slow-upstream test, one such
	// hiccup (a 21st arrival, refused and retried without an attempt) is tolerated here,
	// and the strict figure is the benchmark's (faceidq-bench -apply-get) and the
	// pipeline tests'. The simulator never admits a 21st call.
	st := sim.Stats()
	for _, a := range []string{faceid.Action, faceid.ActionGet} {
		s := st.ByAction[a]
		t.Logf("%s: %d requests, at most %d in a second, %v", a, s.Requests, s.MaxInAnySecond, s.ByCode)
		if s.Requests == 0 || s.MaxAdmittedInAnySecond > 20 || s.MaxInAnySecond > 21 || s.ByCode["RequestLimitExceeded"] > 1 {
			t.Errorf("%s: %+v", a, s)
		}
	}

	// The person's media: nowhere.
	h.mu.Lock()
	hookBodies := bytes.Join(h.bodies, nil)
	h.mu.Unlock()
	assertNoMedia(t, map[string][]byte{
		"redis": dumpRedis(t, rdb), "answers": answers.Bytes(), "webhooks": hookBodies,
		"api log": []byte(api.stderr.String() + api.stdout.String()), "worker log": []byte(wrk.stderr.String() + wrk.stdout.String()),
	})
}

// assertNoMedia fails when any of the simulator's media bytes, base64 or decoded,
// appear in one of where.
func assertNoMedia(t *testing.T, where map[string][]byte) {
	t.Helper()
	decoded, _ := base64.StdEncoding.DecodeString(simulator.MediaPattern)
	needles := [][]byte{[]byte(simulator.MediaPattern[:32]), decoded[:24], []byte("SIMULATED-BIOMETRIC")}
	for name, hay := range where {
		if len(hay) == 0 && name != "worker log" {
			t.Errorf("nothing collected from %s", name)
		}
		for _, n := range needles {
			if bytes.Contains(hay, n) {
				t.Errorf("the person's media found in %s", name)
			}
		}
	}
}

// dumpRedis returns every key and value of rdb.
func dumpRedis(t *testing.T, rdb *redis.Client) []byte {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		out.WriteString(k + "\n")
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			out.WriteString(rdb.Get(ctx, k).Val())
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				out.WriteString(f + "=" + v + "\n")
			}
		case "list":
			out.WriteString(strings.Join(rdb.LRange(ctx, k, 0, -1).Val(), "\n"))
		case "set":
			out.WriteString(strings.Join(rdb.SMembers(ctx, k).Val(), "\n"))
		case "zset":
			out.WriteString(strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), "\n"))
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				fmt.Fprint(&out, m.Values)
			}
		}
		out.WriteString("\n")
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
