package faultsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
)

// TestGracefulShutdown sends SIGTERM to each worker while its upstream calls are in
// flight (1 s upstream latency, jobs arriving at 40/s), then to the api while POSTs
// are in flight: every process exits 0 in time, every in-flight upstream call
// completes (the simulator counts no "Canceled" answer), and every accepted job ends
// succeeded.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{sim: simulator.Config{Faults: simulator.Faults{Latency: time.Second}}})
	api := s.api(t, "api", nil)
	workers := []*node{s.worker(t, "worker-a", nil), s.worker(t, "worker-b", nil)}
	sub := startSubmitter(api.url, "", 25*time.Millisecond)

	for i, w := range workers {
		waittest.UntilReason(t, 30*time.Second, "upstream calls in flight", func() (bool, string) {
			n := s.sim.Stats().InFlight
			return n >= 5, fmt.Sprint(n, " in flight")
		})
		inFlight := s.sim.Stats().InFlight
		start := time.Now()
		if code := term(t, w.Proc, 30*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", w.Name, code)
		}
		t.Logf("%s: SIGTERM with %d upstream calls in flight (both workers), exited in %v",
			w.Name, inFlight, time.Since(start).Round(time.Millisecond))
		workers[i] = s.worker(t, fmt.Sprintf("worker-%d", i+3), nil)
	}
	waittest.UntilReason(t, 30*time.Second, "more accepted jobs", func() (bool, string) { return sub.accepted() >= 200, "" })
	outs := sub.halt()
	// POSTs waiting for their job (Prefer: wait) are in flight at the SIGTERM: they
	// are answered at once with the job as it stands.
	before, err := countKeys(context.Background(), s.rdb, "faceidq:result:*")
	if err != nil {
		t.Fatal(err)
	}
	const waiting = 5
	waited := make(chan posted, waiting)
	for range waiting {
		go func() {
			at := time.Now()
			a, err := do(context.Background(), http.MethodPost, api.url+"/v1/tokens", "", jobBody, "Prefer", "wait=25")
			p := posted{at: at, took: time.Since(at), a: a, err: err}
			var j struct{ JobId string }
			if err == nil && a.status/100 == 2 && json.Unmarshal([]byte(a.body), &j) == nil {
				p.id = j.JobId
			}
			waited <- p
		}()
	}
	waittest.UntilReason(t, 10*time.Second, "the waiting POSTs to be accepted", func() (bool, string) {
		n, err := countKeys(context.Background(), s.rdb, "faceidq:result:*")
		return err == nil && n >= before+waiting, fmt.Sprint(n-before, err)
	})
	start := time.Now()
	if code := term(t, api.Proc, 30*time.Second); code != 0 {
		t.Errorf("api exited %d after SIGTERM", code)
	}
	apiStop := time.Since(start)
	for range waiting {
		p := <-waited
		if p.id == "" {
			t.Errorf("a POST waiting at the SIGTERM got %v HTTP %d %s", p.err, p.a.status, p.a.body)
		}
		outs = append(outs, p)
	}

	var ids []string
	var errs, refused int
	for _, p := range outs {
		switch {
		case p.id != "":
			ids = append(ids, p.id)
		case p.err != nil:
			errs++
			t.Errorf("POST: %v", p.err)
		default:
			refused++
			t.Errorf("POST answered HTTP %d %s", p.a.status, p.a.body)
		}
	}
	js := waitFinal(t, s.rdb, ids, 2*time.Minute)
	requireSucceeded(t, js)
	st := s.sim.Stats()
	t.Logf("%d POSTs: %d accepted (all succeeded), %d refused, %d transport errors; the api stopped in %v with %d POSTs waiting; simulator %v",
		len(outs), len(ids), refused, errs, apiStop.Round(time.Millisecond), waiting, st.ByCode)
	if n := st.ByCode[simulator.CodeCanceled]; n > 0 {
		t.Errorf("%d upstream calls were cut by a shutdown (simulator answers Canceled)", n)
	}
	if got := st.ByCode[simulator.CodeOK]; got != int64(len(ids)) {
		t.Errorf("the simulator issued %d BizTokens for %d jobs", got, len(ids))
	}
}
