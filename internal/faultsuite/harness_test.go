package faultsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/proctest"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// full reports whether the long variants run (FACEIDQ_FAULT_FULL=1, never with -short).
func full() bool { return os.Getenv("FACEIDQ_FAULT_FULL") == "1" && !testing.Short() }

// pick returns long in the full run, short otherwise.
func pick[T any](short, long T) T {
	if full() {
		return long
	}
	return short
}

// startProc runs faceidq (built once, or proctest.BinEnv) with args and exactly env;
// proctest kills it when the test ends and logs its output when the test failed.
func startProc(t testing.TB, name string, args []string, env map[string]string) *proctest.Proc {
	t.Helper()
	return proctest.MustStart(t, name, proctest.Bin(t), args, env)
}

// term sends SIGTERM and waits up to grace for the exit code, failing the test when
// the process did not end in time.
func term(t testing.TB, p *proctest.Proc, grace time.Duration) int {
	t.Helper()
	code, err := p.Term(grace)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// upstream is an in-process simulator served on a loopback port.
type upstream struct {
	*simulator.Server
	endpoint string
}

// startSim serves a simulator configured by cfg until the test ends.
func startSim(t testing.TB, cfg simulator.Config) *upstream {
	t.Helper()
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sim.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return &upstream{Server: sim, endpoint: "http://" + ln.Addr().String()}
}

// setFaults changes the simulator's faults, failing the test on a bad value.
func (u *upstream) setFaults(t testing.TB, f simulator.Faults) {
	t.Helper()
	if err := u.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

// ok is the number of BizTokens the simulator issued.
func (u *upstream) ok() int64 { return u.Stats().ByCode[simulator.CodeOK] }

// stack is one deployment under test: a real redis-server, a simulator and the
// environment every faceidq process of the deployment shares.
type stack struct {
	red *redistest.Server
	rdb *redis.Client
	sim *upstream
	env map[string]string
}

// stackOptions configures newStack.
type stackOptions struct {
	redisArgs []string          // extra redis-server arguments
	sim       simulator.Config  // the simulator's configuration
	env       map[string]string // extra environment of every process
	// redisURL, when set, is a Redis the test started itself (AUTH, TLS): no
	// redis-server is started and stack.red and stack.rdb are nil.
	redisURL string
}

// newStack starts redis-server and the simulator.
func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	proctest.Bin(t)
	st := &stack{}
	url := o.redisURL
	if url == "" {
		st.red = redistest.Start(t, redistest.Options{Args: o.redisArgs})
		st.rdb = st.red.Client(t)
		url = st.red.URL()
	}
	st.sim = startSim(t, o.sim)
	id, key := st.sim.Credential()
	st.env = map[string]string{
		"REDIS_URL":               url,
		"FACEIDQ_ENDPOINT":        st.sim.endpoint,
		"TENCENTCLOUD_SECRET_ID":  id,
		"TENCENTCLOUD_SECRET_KEY": key,
		"FACEIDQ_LOG_FORMAT":      "json",
		"FACEIDQ_LOG_LEVEL":       "info",
		"FACEIDQ_LISTEN":          "127.0.0.1:0",
	}
	for k, v := range o.env {
		st.env[k] = v
	}
	return st
}

// node is a running faceidq api or worker and the base URL of its HTTP listener.
type node struct {
	*proctest.Proc
	url string
}

func (s *stack) procEnv(extra map[string]string) map[string]string {
	env := make(map[string]string, len(s.env)+len(extra))
	for k, v := range s.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// api starts `faceidq api` and waits until it listens.
func (s *stack) api(t testing.TB, name string, extra map[string]string) *node {
	t.Helper()
	p := startProc(t, name, []string{"api"}, s.procEnv(extra))
	return &node{Proc: p, url: "http://" + p.MustAddr(t, "api")}
}

// worker starts `faceidq worker` with a metrics listener and waits until it listens.
func (s *stack) worker(t testing.TB, name string, extra map[string]string) *node {
	t.Helper()
	env := s.procEnv(extra)
	env["FACEIDQ_METRICS_LISTEN"] = "127.0.0.1:0"
	p := startProc(t, name, []string{"worker"}, env)
	return &node{Proc: p, url: "http://" + p.MustAddr(t, "metrics")}
}

// client is the HTTP client of the tests: no test request may hang.
var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// answer is an HTTP answer as a test sees it.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request; token "" sends no Authorization header.
func do(ctx context.Context, method, url, token, body string, header ...string) (answer, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return answer{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// jobBody is a valid POST /v1/tokens body.
const jobBody = `{"RedirectURL":"https://example.com/done"}`

// submit posts body to /v1/tokens and returns the JobId of a 2xx answer.
func submit(ctx context.Context, base, token, body string) (string, answer, error) {
	a, err := do(ctx, http.MethodPost, base+"/v1/tokens", token, body)
	if err != nil || a.status/100 != 2 {
		return "", a, err
	}
	var j struct{ JobId string }
	if err := json.Unmarshal([]byte(a.body), &j); err != nil || j.JobId == "" {
		return "", a, fmt.Errorf("2xx answer without a JobId: %q", a.body)
	}
	return j.JobId, a, nil
}

// mustSubmit submits n jobs (body jobBody) and returns their JobIds.
func mustSubmit(t testing.TB, base, token string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for range n {
		id, a, err := submit(context.Background(), base, token, jobBody)
		if err != nil || id == "" {
			t.Fatalf("submit: %v (HTTP %d %s)", err, a.status, a.body)
		}
		ids = append(ids, id)
	}
	return ids
}

// jobs reads the records of ids straight from Redis; a missing record is nil.
func jobs(ctx context.Context, rdb redis.UniversalClient, ids []string) (map[string]*tasks.Job, error) {
	out := make(map[string]*tasks.Job, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		pipe := rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(chunk))
		for i, id := range chunk {
			cmds[i] = pipe.HGetAll(ctx, keys.Result(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for i, id := range chunk {
			rec := cmds[i].Val()
			if len(rec) == 0 {
				out[id] = nil
				continue
			}
			j, err := tasks.JobFromRecord(id, rec)
			if err != nil {
				return nil, err
			}
			out[id] = j
		}
	}
	return out, nil
}

// census counts jobs by status ("missing" for no record).
func census(js map[string]*tasks.Job) map[string]int {
	c := map[string]int{}
	for _, j := range js {
		if j == nil {
			c["missing"]++
		} else {
			c[string(j.Status)]++
		}
	}
	return c
}

// waitFinal waits until every job of ids is final and returns the records.
func waitFinal(t testing.TB, rdb redis.UniversalClient, ids []string, timeout time.Duration) map[string]*tasks.Job {
	t.Helper()
	var js map[string]*tasks.Job
	waittest.UntilReason(t, timeout, fmt.Sprintf("%d jobs to be final", len(ids)), func() (bool, string) {
		var err error
		js, err = jobs(context.Background(), rdb, ids)
		if err != nil {
			return false, err.Error()
		}
		c := census(js)
		return c[string(tasks.StatusSucceeded)]+c[string(tasks.StatusFailed)]+c[string(tasks.StatusCanceled)] == len(ids),
			fmt.Sprint(c)
	})
	return js
}

// requireSucceeded fails the test unless every job succeeded.
func requireSucceeded(t testing.TB, js map[string]*tasks.Job) {
	t.Helper()
	if c := census(js); c[string(tasks.StatusSucceeded)] != len(js) {
		t.Errorf("want all %d jobs succeeded, got %v", len(js), c)
		for id, j := range js {
			if j == nil || j.Status != tasks.StatusSucceeded {
				t.Logf("job %s: %+v", id, j)
				break
			}
		}
	}
}

// metric reads one unlabelled sample of a Prometheus text page.
func metric(page, name string) (float64, bool) {
	for _, line := range strings.Split(page, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// procStats are a process's memory and goroutines, from its /metrics.
type procStats struct {
	rss        float64 // process_resident_memory_bytes
	goroutines float64 // go_goroutines
}

func scrape(t testing.TB, base, token string) procStats {
	t.Helper()
	a, err := do(context.Background(), http.MethodGet, base+"/metrics", token, "")
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("GET %s/metrics: %v %d", base, err, a.status)
	}
	rss, ok1 := metric(a.body, "process_resident_memory_bytes")
	g, ok2 := metric(a.body, "go_goroutines")
	if !ok1 || !ok2 {
		t.Fatalf("%s/metrics lacks process_resident_memory_bytes or go_goroutines", base)
	}
	return procStats{rss: rss, goroutines: g}
}

// countKeys counts the keys matching pattern (SCAN).
func countKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	return n, iter.Err()
}

// queued counts the token tasks asynq holds in every state but completed.
func queued(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	var n int64
	for _, q := range tasks.TokenQueues {
		pipe := rdb.Pipeline()
		l1 := pipe.LLen(ctx, "asynq:{"+q+"}:pending")
		l2 := pipe.LLen(ctx, "asynq:{"+q+"}:active")
		z1 := pipe.ZCard(ctx, "asynq:{"+q+"}:scheduled")
		z2 := pipe.ZCard(ctx, "asynq:{"+q+"}:retry")
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return 0, err
		}
		n += l1.Val() + l2.Val() + z1.Val() + z2.Val()
	}
	return n, nil
}

// mib formats bytes as MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// testWebhookSecret is a webhook signing secret of the tests.
const testWebhookSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
