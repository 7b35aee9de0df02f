// Package bench is the pipeline benchmark harness behind cmd/faceidq-bench: it runs a real
// redis-server, the upstream simulator and N worker processes (internal/proctest), and
// measures at the simulator what the upstream would see, for faceidq and two asynq
// alternatives (a shared GCRA limiter, the wiki's per-process recipe). The method and the
// figures are in docs/benchmarks.md.
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/proctest"
	"github.com/faceidq/faceidq/internal/redisproc"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// Profile is an upstream latency profile: the round trip is Latency ± Jitter, half of
// it spent on the way in (before the upstream counts the arrival) and half after.
type Profile struct {
	Name    string
	Latency time.Duration
	Jitter  time.Duration
}

// Profiles are the latency profiles of the issue.
var Profiles = map[string]Profile{
	"steady":  {Name: "steady 30ms", Latency: 30 * time.Millisecond},
	"varying": {Name: "30±20ms", Latency: 30 * time.Millisecond, Jitter: 20 * time.Millisecond},
}

// The modes a run compares.
const (
	ModeFaceidq   = "faceidq"    // faceidq's own worker processes
	ModeRedisRate = "redis_rate" // asynq + one shared GCRA limiter in Redis (RunRedisRate)
	ModeAsynqWiki = "asynq-wiki" // asynq + the wiki's per-process limiter (RunBaseline)
)

// Modes is every mode, in the order a default run measures them.
var Modes = []string{ModeFaceidq, ModeRedisRate, ModeAsynqWiki}

// ParseModes parses "faceidq,redis_rate,asynq-wiki" into mode names; "asynq", the wiki
// recipe's old name, is accepted for asynq-wiki.
func ParseModes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		m := strings.TrimSpace(f)
		if m == "asynq" {
			m = ModeAsynqWiki
		}
		if !slices.Contains(Modes, m) {
			return nil, fmt.Errorf("bench: unknown mode %q (want %s)", f, strings.Join(Modes, ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

// Options configures a run.
type Options struct {
	Workers          []int          // worker process counts, e.g. 1, 3, 8
	Modes            []string       // of Modes (see ParseModes)
	Profiles         []string       // keys of Profiles, and "burst" for the burst profile (burst.go)
	Burst            BurstOptions   // the burst profile's shape
	Duration         time.Duration  // measured time per scenario
	Warmup           time.Duration  // unmeasured time before it
	Backlog          int            // jobs pending at the start
	BacklogLane      tasks.Priority // their lane (zero: batch)
	InteractiveEvery time.Duration  // one interactive job this often
	Rate             int            // upstream limit
	Concurrency      int            // per worker process
	FaceidqBin       string         // the faceidq binary (built when empty)
	Self             string         // this harness's binary, for the asynq modes' workers
	WebhookDelay     time.Duration  // when set, every faceidq job has a webhook to a receiver this slow
	GetLane          tasks.Priority // the lane of the apply+get scenario's fetches
	ApplyGet         bool           // run only the apply+get scenario (faceidq): both actions' backlogs at once
	Dir              string         // scratch directory
	Log              io.Writer      // progress lines
}

// Row is one measured scenario.
type Row struct {
	Mode, Profile        string
	Workers              int
	OK                   int
	Util                 float64
	MaxInAnySecond       int
	RequestLimitExceeded int64
	IWaitP50, IWaitP95   time.Duration
	IJobs                int
	Spread               time.Duration // the delay spread the faceidq limiter paced with at the end
	Margin               time.Duration // the tightest second's margin (probe.margin)
}

// Run runs every scenario and the idle-pickup measurement, and writes the table to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	modes, err := ParseModes(strings.Join(o.Modes, ","))
	if err != nil {
		return err
	}
	o.Modes = modes
	o.BacklogLane = cmp.Or(o.BacklogLane, tasks.PriorityBatch)
	red, err := redisproc.Start(redisproc.Options{Dir: o.Dir})
	if err != nil {
		return err
	}
	defer red.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: red.Addr(), PoolSize: 32})
	defer rdb.Close()

	sim, err := simulator.New(simulator.Config{Rate: o.Rate})
	if err != nil {
		return err
	}
	pr := newProbe(sim)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: pr, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	endpoint := "http://" + ln.Addr().String()

	if o.FaceidqBin == "" {
		fmt.Fprintf(o.Log, "building faceidq into %s\n", o.Dir)
		if o.FaceidqBin, err = proctest.Build(o.Dir); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	env := &runEnv{o: o, rdb: rdb, red: red, sim: sim, probe: pr, endpoint: endpoint}
	if o.WebhookDelay > 0 {
		recv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			env.webhooks.Add(1)
			select {
			case <-time.After(o.WebhookDelay):
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusNoContent)
		})}
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go func() { _ = recv.Serve(rl) }()
		defer recv.Close()
		env.callback = "http://" + rl.Addr().String() + "/hook"
	}

	if o.ApplyGet {
		var rows []ActionRow
		for _, prof := range o.Profiles {
			p, ok := Profiles[prof]
			if !ok {
				return fmt.Errorf("bench: unknown profile %q", prof)
			}
			for _, n := range o.Workers {
				fmt.Fprintf(o.Log, "scenario: apply+get, %d worker(s), %s\n", n, p.Name)
				r, err := env.actionsScenario(ctx, n, p)
				if err != nil {
					return err
				}
				rows = append(rows, r...)
			}
		}
		writeActionsTable(out, o, rows)
		return nil
	}
	var latency []string
	burst := false
	for _, prof := range o.Profiles {
		if prof == "burst" {
			burst = true
			continue
		}
		latency = append(latency, prof)
	}
	if burst {
		n := o.Workers[0]
		rows, eta, err := env.burst(ctx, n, o.Burst)
		if err != nil {
			return err
		}
		writeBurstTable(out, o.Burst, n, rows, eta)
		if len(latency) == 0 {
			return nil
		}
	}
	var rows []Row
	for _, prof := range latency {
		p, ok := Profiles[prof]
		if !ok {
			return fmt.Errorf("bench: unknown profile %q", prof)
		}
		for _, mode := range o.Modes {
			for _, n := range o.Workers {
				fmt.Fprintf(o.Log, "scenario: %s, %d worker(s), %s\n", mode, n, p.Name)
				row, err := env.scenario(ctx, mode, n, p)
				if err != nil {
					return err
				}
				fmt.Fprintf(o.Log, "  → %s\n", row.line())
				rows = append(rows, row)
			}
		}
	}
	idle, err := env.idlePickup(ctx)
	if err != nil {
		return err
	}
	writeTable(out, o, rows, idle)
	return nil
}

type runEnv struct {
	o        Options
	callback string       // CallbackURL of every faceidq job, "" for none
	webhooks atomic.Int64 // deliveries the slow receiver got
	rdb      *redis.Client
	red      *redisproc.Server
	sim      *simulator.Server
	probe    *probe
	endpoint string
}

func (e *runEnv) setProfile(p Profile) error {
	e.probe.setInbound(p.Latency/2, p.Jitter/2)
	return e.sim.SetFaults(simulator.Faults{Latency: p.Latency / 2, Jitter: p.Jitter / 2})
}

func (e *runEnv) reset(ctx context.Context) error {
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	e.probe.reset()
	e.sim.ResetStats()
	return nil
}

// enqueuer submits jobs the way a mode's producers would.
type enqueuer func(ctx context.Context, prio tasks.Priority, extra string) error

func (e *runEnv) enqueuer(mode string) (enqueuer, func(), error) {
	if mode == ModeFaceidq {
		p, err := producer.New(producer.Config{Redis: e.rdb,
			CheckCallbackURL: func(context.Context, string) error { return nil }})
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, prio tasks.Priority, extra string) error {
			u := "https://example.com/bench"
			_, _, err := p.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: prio, CallbackURL: e.callback}, producer.Options{})
			return err
		}, p.Close, nil
	}
	c := asynq.NewClientFromRedisClient(e.rdb)
	return func(ctx context.Context, prio tasks.Priority, extra string) error {
		u := "https://example.com/bench"
		pl := &tasks.ApplyPayload{JobID: tasks.NewJobID(), Priority: prio, Region: "ap-singapore", CreatedAt: time.Now()}
		pl.Input.RedirectURL, pl.Input.Extra = &u, &extra
		b, err := json.Marshal(pl) // plain asynq: the input in the task (no record to read it from)
		if err != nil {
			return err
		}
		_, err = c.EnqueueContext(ctx, asynq.NewTask(tasks.TypeApplyToken, b), asynq.Queue(tasks.Queue(tasks.TypeApplyToken, prio)))
		return err
	}, func() {}, nil
}

func (e *runEnv) startWorkers(ctx context.Context, mode string, n int) ([]*proctest.Proc, error) {
	var procs []*proctest.Proc
	for i := 0; i < n; i++ {
		id, key := e.sim.Credential()
		env := map[string]string{"TENCENTCLOUD_SECRET_ID": id, "TENCENTCLOUD_SECRET_KEY": key}
		var bin string
		var args []string
		switch mode {
		case ModeAsynqWiki:
			bin, args = e.o.Self, []string{"baseline-worker", "-redis", e.red.URL(), "-endpoint", e.endpoint,
				"-rate", strconv.Itoa(e.o.Rate), "-processes", strconv.Itoa(n), "-concurrency", strconv.Itoa(e.o.Concurrency)}
		case ModeRedisRate:
			bin, args = e.o.Self, []string{"redis-rate-worker", "-redis", e.red.URL(), "-endpoint", e.endpoint,
				"-rate", strconv.Itoa(e.o.Rate), "-concurrency", strconv.Itoa(e.o.Concurrency)}
		case ModeFaceidq:
			bin, args = e.o.FaceidqBin, []string{"worker", "--concurrency", strconv.Itoa(e.o.Concurrency)}
			env["REDIS_URL"], env["FACEIDQ_ENDPOINT"], env["FACEIDQ_RATE"] = e.red.URL(), e.endpoint, strconv.Itoa(e.o.Rate)
			if e.callback != "" {
				env["FACEIDQ_WEBHOOK_SECRET"], env["FACEIDQ_WEBHOOK_ALLOW"] = benchWebhookSecret, "127.0.0.1/32"
			}
		default:
			return procs, fmt.Errorf("bench: unknown mode %q", mode)
		}
		name := fmt.Sprintf("%s-%d-%d", mode, n, i)
		logf, err := os.Create(filepath.Join(e.o.Dir, name+".log"))
		if err != nil {
			return procs, err
		}
		p, err := proctest.Start(name, bin, args, env, logf)
		if err != nil {
			return procs, fmt.Errorf("bench: start %s worker: %w", mode, err)
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// stopWorkers sends SIGTERM to every worker, then waits up to 30 s for each (SIGKILL
// after that).
func stopWorkers(procs []*proctest.Proc) {
	for _, p := range procs {
		if !p.Exited() {
			_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		_, _ = p.Term(30 * time.Second)
	}
}

func (e *runEnv) scenario(ctx context.Context, mode string, n int, p Profile) (Row, error) {
	row := Row{Mode: mode, Workers: n, Profile: p.Name}
	if err := e.setProfile(p); err != nil {
		return row, err
	}
	if err := e.reset(ctx); err != nil {
		return row, err
	}
	enq, done, err := e.enqueuer(mode)
	if err != nil {
		return row, err
	}
	defer done()
	for i := 0; i < e.o.Backlog; i++ {
		if err := enq(ctx, e.o.BacklogLane, "bench:b:"+strconv.Itoa(i)); err != nil {
			return row, fmt.Errorf("bench: enqueue backlog: %w", err)
		}
	}
	cmds, err := e.startWorkers(ctx, mode, n)
	defer stopWorkers(cmds)
	if err != nil {
		return row, err
	}
	start := time.Now()
	from, to := start.Add(e.o.Warmup), start.Add(e.o.Warmup+e.o.Duration)
	tick := time.NewTicker(e.o.InteractiveEvery)
	defer tick.Stop()
	for time.Now().Before(to) {
		select {
		case <-ctx.Done():
			return row, ctx.Err()
		case now := <-tick.C:
			if now.Before(from) || now.After(to.Add(-2*time.Second)) {
				continue
			}
			if err := enq(ctx, tasks.PriorityInteractive, "bench:i:"+strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
				return row, err
			}
		}
	}
	if mode == ModeFaceidq {
		row.Spread = e.limiterSpread(ctx)
	}
	stopWorkers(cmds)
	cmds = nil
	st := e.sim.Stats()
	row.OK = e.probe.okBetween(from, to)
	row.Util = float64(row.OK) / (float64(e.o.Rate) * e.o.Duration.Seconds())
	row.MaxInAnySecond = st.MaxInAnySecond
	row.Margin, _ = e.probe.margin(e.o.Rate)
	row.RequestLimitExceeded = st.ByCode["RequestLimitExceeded"]
	w := e.probe.interactiveWaits()
	row.IJobs = len(w)
	row.IWaitP50, row.IWaitP95 = quantile(w, 0.5), quantile(w, 0.95)
	return row, nil
}

// benchWebhookSecret signs the benchmark's webhooks (a fixed, public test value).
const benchWebhookSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// limiterSpread reads the delay spread shared in the faceidq limiter's hash (0 when
// there is none).
func (e *runEnv) limiterSpread(ctx context.Context) time.Duration {
	// The Apply budget's hash: not its usage counters (same hash tag, longer name) nor
	// another action's budget.
	ks, _ := e.rdb.Keys(ctx, "faceidq:{limiter:*"+faceid.Action+"*}").Result()
	if len(ks) == 0 {
		return 0
	}
	v, _ := e.rdb.HMGet(ctx, ks[0], "cmin", "cmax", "pmin", "pmax").Result()
	lo, hi := int64(-1), int64(-1)
	for i, x := range v {
		s, _ := x.(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		if i%2 == 0 && (lo < 0 || n < lo) {
			lo = n
		}
		if i%2 == 1 && n > hi {
			hi = n
		}
	}
	if lo < 0 || hi < lo {
		return 0
	}
	return time.Duration(hi-lo) * time.Microsecond
}

// idlePickup measures enqueue → upstream arrival of interactive jobs on an idle
// faceidq worker, with no network latency (pickup is faceidq's own part).
func (e *runEnv) idlePickup(ctx context.Context) ([]time.Duration, error) {
	if err := e.setProfile(Profile{Name: "none"}); err != nil {
		return nil, err
	}
	if err := e.reset(ctx); err != nil {
		return nil, err
	}
	enq, done, err := e.enqueuer(ModeFaceidq)
	if err != nil {
		return nil, err
	}
	defer done()
	cmds, err := e.startWorkers(ctx, ModeFaceidq, 1)
	defer stopWorkers(cmds)
	if err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second) // let the worker start and go idle
	for i := 0; i < 40; i++ {
		if err := enq(ctx, tasks.PriorityInteractive, "bench:i:"+strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
			return nil, err
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(time.Second)
	return e.probe.interactiveWaits(), nil
}

func (r Row) line() string {
	return fmt.Sprintf("util %.1f%%, max/s %d, margin %v, RLE %d, interactive p50 %v p95 %v (%d jobs), limiter spread %v",
		100*r.Util, r.MaxInAnySecond, r.Margin.Round(10*time.Microsecond), r.RequestLimitExceeded, r.IWaitP50.Round(time.Millisecond), r.IWaitP95.Round(time.Millisecond), r.IJobs, r.Spread)
}

func writeTable(out io.Writer, o Options, rows []Row, idle []time.Duration) {
	fmt.Fprintf(out, "\nupstream limit %d/s (strict sliding second, counted on arrival); %v measured after %v warm-up; %d %s jobs pending; one interactive job every %v\n",
		o.Rate, o.Duration, o.Warmup, o.Backlog, o.BacklogLane, o.InteractiveEvery)
	if o.WebhookDelay > 0 {
		fmt.Fprintf(out, "every faceidq job has a webhook to a receiver that takes %v to answer each delivery\n", o.WebhookDelay)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "margin: how far the tightest sliding second kept from %d arrivals (negative: it held them)\n\n", o.Rate+1)
	fmt.Fprintln(out, "| mode | workers | latency | calls/s | utilization | max in any 1 s | margin | RequestLimitExceeded | interactive wait p50 | p95 | limiter spread |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		spread := "n/a"
		if r.Mode == ModeFaceidq {
			spread = r.Spread.Round(100 * time.Microsecond).String()
		}
		fmt.Fprintf(out, "| %s | %d | %s | %.2f | %.1f%% | %d | %v | %d | %v | %v | %s |\n", r.Mode, r.Workers, r.Profile,
			float64(r.OK)/o.Duration.Seconds(), 100*r.Util, r.MaxInAnySecond, r.Margin.Round(10*time.Microsecond), r.RequestLimitExceeded,
			r.IWaitP50.Round(time.Millisecond), r.IWaitP95.Round(time.Millisecond), spread)
	}
	fmt.Fprintf(out, "\nidle pickup (faceidq, 1 worker, no network latency, enqueue → upstream arrival, %d jobs): p50 %v, p95 %v\n",
		len(idle), quantile(idle, 0.5).Round(time.Millisecond), quantile(idle, 0.95).Round(time.Millisecond))
}

// ParseInts parses "1,3,8".
func ParseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
