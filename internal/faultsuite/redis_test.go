package faultsuite

import (
	"github.com/faceidq/faceidq/internal/waittest"

	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// posted is the outcome of one POST /v1/tokens of a background submitter.
type posted struct {
	at   time.Time
	took time.Duration
	id   string // the JobId of a 2xx answer
	a    answer
	err  error
}

// submitter posts jobBody to an api at a fixed rate, each request in its own
// goroutine, until stopped.
type submitter struct {
	mu   sync.Mutex
	outs []posted
	stop chan struct{}
	wg   sync.WaitGroup
}

// startSubmitter posts every interval until stop is called.
func startSubmitter(base, token string, interval time.Duration) *submitter {
	s := &submitter{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				at := time.Now()
				id, a, err := submit(context.Background(), base, token, jobBody)
				s.mu.Lock()
				s.outs = append(s.outs, posted{at: at, took: time.Since(at), id: id, a: a, err: err})
				s.mu.Unlock()
			}()
		}
	}()
	return s
}

// halt stops submitting, waits for the requests in flight and returns every outcome.
func (s *submitter) halt() []posted {
	close(s.stop)
	s.wg.Wait()
	return s.outs
}

func (s *submitter) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.outs {
		if p.id != "" {
			n++
		}
	}
	return n
}

// TestRedisRestart kills redis-server (SIGKILL) in the middle of a run and starts it
// again on the same port and data directory. The server runs with appendonly yes and
// appendfsync always: every write a client saw acknowledged is on disk, so no
// accepted job (a POST answered 2xx) may be lost. (With appendfsync everysec, the
// default, a crash loses up to about one second of acknowledged writes — up to two
// when the disk stalls — so jobs accepted in that second would be gone; a clean
// SIGTERM restart loses nothing with either.) While Redis is down, the api answers
// 503 with Retry-After quickly, never hangs or shows a stack; the api and the worker
// reconnect by themselves.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{redisArgs: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	api := s.api(t, "api", nil)
	w := s.worker(t, "worker", nil)

	sub := startSubmitter(api.url, "", 25*time.Millisecond) // 40 POST/s
	waittest.UntilReason(t, 30*time.Second, "100 accepted jobs", func() (bool, string) { return sub.accepted() >= 100, "" })

	s.red.Kill()
	down := time.Now()
	// The api sees the outage: /readyz and POSTs answer 503.
	waittest.UntilReason(t, 15*time.Second, "/readyz to answer 503", func() (bool, string) {
		a, err := do(context.Background(), http.MethodGet, api.url+"/readyz", "", "")
		return err == nil && a.status == http.StatusServiceUnavailable, a.body
	})
	outage := pick(6*time.Second, 20*time.Second)
	time.Sleep(time.Until(down.Add(outage))) // the outage itself: nothing to wait on
	s.red.Restart()
	up := time.Now()
	before := sub.accepted()
	waittest.UntilReason(t, 30*time.Second, "a POST accepted after the restart", func() (bool, string) {
		return sub.accepted() > before+20, ""
	})
	reconnected := time.Since(up)
	outs := sub.halt()
	for _, n := range []*node{api, w} {
		waittest.UntilReason(t, 15*time.Second, n.Name+" /readyz to answer 200 again", func() (bool, string) {
			a, err := do(context.Background(), http.MethodGet, n.url+"/readyz", "", "")
			return err == nil && a.status == http.StatusOK, fmt.Sprint(a.status, err)
		})
		if n.Exited() {
			t.Errorf("%s exited during the Redis outage:\n%s", n.Name, n.Out.Tail(2048))
		}
	}

	var ids []string
	var refused int
	var maxTook time.Duration
	for _, p := range outs {
		switch {
		case p.err != nil:
			t.Errorf("POST at %v: transport error %v (the api must answer)", p.at.Sub(down).Round(time.Millisecond), p.err)
		case p.id != "":
			ids = append(ids, p.id)
		default:
			refused++
			if p.a.status != http.StatusServiceUnavailable || p.a.header.Get("Retry-After") == "" {
				t.Errorf("POST during the outage: HTTP %d (Retry-After %q) %s, want 503 with Retry-After",
					p.a.status, p.a.header.Get("Retry-After"), p.a.body)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(p.a.body), &e); err != nil || e.Error.Code == "" {
				t.Errorf("503 body is not a JSON error: %q", p.a.body)
			}
			if strings.Contains(p.a.body, "goroutine ") || strings.Contains(p.a.body, ".go:") {
				t.Errorf("503 body shows internals: %q", p.a.body)
			}
		}
		if p.took > maxTook {
			maxTook = p.took
		}
	}
	if refused == 0 {
		t.Error("no POST was refused during the outage: the outage was not observed")
	}
	if maxTook > 15*time.Second {
		t.Errorf("slowest POST took %v: requests during the outage must not hang", maxTook)
	}
	drain := time.Now()
	js := waitFinal(t, s.rdb, ids, 2*time.Minute)
	requireSucceeded(t, js)
	// The jobs a worker held when Redis died come back through the worker's lease
	// recovery (~33 s): asynq v0.26's syncer retries "move to retry" with the
	// context its processor already canceled, so those retries never succeed.
	t.Logf("every accepted job final %v after the restart (%v after the last POST)",
		time.Since(up).Round(time.Millisecond), time.Since(drain).Round(time.Millisecond))
	t.Logf("Redis down %v (SIGKILL, appendfsync always): %d POSTs, %d accepted (all succeeded, 0 lost), %d answered 503; "+
		"slowest POST %v; first accepted POSTs %v after the restart; upstream duplicates %d",
		up.Sub(down).Round(time.Millisecond), len(outs), len(ids), refused, maxTook.Round(time.Millisecond),
		reconnected.Round(time.Millisecond), s.sim.ok()-int64(len(ids)))
}
