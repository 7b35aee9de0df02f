package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/workertest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// arrivals records when each call reached the upstream, by the job index its Extra
// carries, in front of the simulator.
type arrivals struct {
	mu sync.Mutex
	at map[int]time.Time
}

func (a *arrivals) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		var in struct{ Extra string }
		if json.Unmarshal(b, &in) == nil {
			if i, err := strconv.Atoi(in.Extra); err == nil {
				a.mu.Lock()
				if _, seen := a.at[i]; !seen {
					a.at[i] = now
				}
				a.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// TestDeadlinesUnderABurst: 3,000 interactive jobs arrive in 10 s with MaxWait 30 s at
// a 20/s upstream. No expired job reaches the upstream, every job served starts within
// its deadline, and the upstream is kept busy with jobs served in time (goodput ≥ 95 %
// of 20/s over the run).
func TestDeadlinesUnderABurst(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3,000-job burst against a 20/s upstream (about 45 s)")
	}
	c := setupCluster(t, simulator.Faults{})
	rec := &arrivals{at: map[int]time.Time{}}
	hs := httptest.NewServer(rec.wrap(c.sim))
	t.Cleanup(hs.Close)
	id, key := c.sim.Credential()
	for range 3 {
		workertest.Start(t, c.red.Client(t), workertest.Upstream{Endpoint: hs.URL, SecretID: id, SecretKey: key})
	}

	const n, over, maxWait = 3000, 10 * time.Second, 30
	ctx := context.Background()
	u := "https://example.com/done"
	ids := make([]string, n)
	deadlines := make([]time.Time, n)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * over / n)); d > 0 {
			time.Sleep(d)
		}
		extra := strconv.Itoa(i)
		j, _, err := c.producer.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, MaxWait: maxWait}, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i], deadlines[i] = j.JobId, *j.Deadline
	}
	t.Logf("submitted %d jobs in %v", n, time.Since(start).Round(time.Millisecond))
	jobs := c.waitAllFinal(t, ids, over+maxWait*time.Second+30*time.Second)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	succeeded, expired, refused := 0, 0, 0
	var lastStart time.Time
	for i, j := range jobs {
		at, called := rec.at[i]
		switch j.Status {
		case tasks.StatusSucceeded:
			succeeded++
			if !called {
				t.Fatalf("job %d succeeded without reaching the upstream", i)
			}
			if at.After(deadlines[i]) {
				t.Errorf("job %d reached the upstream %v after its deadline", i, at.Sub(deadlines[i]))
			}
			if at.After(lastStart) {
				lastStart = at
			}
		case tasks.StatusExpired:
			expired++
			if called {
				// Only a call the upstream refused (RequestLimitExceeded: the limiter
				// overran under a loaded machine) may precede an expiry; the job was
				// then retrying, and the check below counts the call as wasted.
				refused++
			}
			if j.Error == nil || j.Error.Code != results.CodeDeadlineExceeded || j.Attempts != map[bool]int{false: 0, true: 1}[called] {
				t.Errorf("expired job %d: %+v (called %v)", i, j, called)
			}
		default:
			t.Errorf("job %d ended %s (%+v)", i, j.Status, j.Error)
		}
	}
	st := c.sim.Stats()
	limited := st.ByCode["RequestLimitExceeded"]
	if st.ByCode["OK"] != int64(succeeded) || st.Requests != int64(succeeded)+limited || int64(refused) > limited {
		t.Errorf("the upstream saw %d requests (%v) for %d succeeded jobs and %d refused calls of expired jobs: an expired job was served",
			st.Requests, st.ByCode, succeeded, refused)
	}
	busy := lastStart.Sub(start)
	goodput := float64(succeeded) / busy.Seconds()
	t.Logf("succeeded %d, expired %d (%d after a refused call); goodput %.2f/s over %v; simulator max %d in a second",
		succeeded, expired, refused, goodput, busy.Round(time.Millisecond), st.MaxInAnySecond)
	// Each RequestLimitExceeded (the limiter overrunning on a loaded machine) slows
	// the limiter down for about six seconds, costing about 18 slots: the bar allows
	// for those and stays 0.95 × 20/s without them.
	if want := 0.95*20 - float64(limited)*18/busy.Seconds(); goodput < want {
		t.Errorf("goodput %.2f/s, want ≥ %.2f/s (%d RequestLimitExceeded)", goodput, want, limited)
	}
	if busy < over+maxWait*time.Second-2*time.Second {
		t.Errorf("the last job in time started at %v: the backlog was not served to its deadline", busy)
	}
}
