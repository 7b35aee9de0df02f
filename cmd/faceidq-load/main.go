// Command faceidq-load measures the HTTP API's intake: POST /v1/tokens against
// `faceidq api` on a real redis-server, next to the floor (a bare handler that only calls
// asynq's Enqueue on the same Redis), in the same run. With -ack-replicas N it also
// starts N replica redis-servers and a second `faceidq api` with FACEIDQ_ACK_REPLICAS=N,
// measured next to the first. Usage and method are in docs/benchmarks.md.
//
//	go run ./cmd/faceidq-load
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/proctest"
	"github.com/faceidq/faceidq/internal/redisproc"
	"github.com/faceidq/faceidq/tasks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		code = floor(ctx, os.Args[2:])
	} else {
		code = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

const body = `{"RedirectURL":"https://example.com/signup/done","Extra":"load-test-user"}`

type options struct {
	redisURL, target, token, faceidq string
	rate, concurrency, ackReplicas   int
	duration, warmup, window         time.Duration
	serve                            bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("faceidq-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis to use (default: start a redis-server here)")
	fs.StringVar(&o.target, "target", "", "faceidq API base URL (default: start `faceidq api` here)")
	fs.StringVar(&o.token, "token", "", "bearer token for -target")
	fs.StringVar(&o.faceidq, "faceidq", "", "faceidq binary (default: go build ./cmd/faceidq)")
	fs.IntVar(&o.rate, "rate", 5000, "offered rate of the fixed-rate phase, requests per second")
	fs.IntVar(&o.concurrency, "concurrency", 64, "most requests in flight")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each phase")
	fs.BoolVar(&o.serve, "serve", false, "profile `faceidq serve` on its embedded Redis instead: saturation with -concurrency clients for -duration, its pipeline paused (every job stays queued), in windows of -window, with RSS per queued job")
	fs.DurationVar(&o.window, "window", 5*time.Second, "with -serve: the length of each reported window")
	fs.IntVar(&o.ackReplicas, "ack-replicas", 0, "also measure `faceidq api` with FACEIDQ_ACK_REPLICAS=N, starting N replicas of the redis-server started here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.rate <= 0 || o.concurrency <= 0 || o.duration <= 0 {
		fmt.Fprintln(stderr, "faceidq-load: -rate, -concurrency and -duration must be positive")
		return 2
	}
	if o.ackReplicas < 0 || (o.ackReplicas > 0 && o.target != "") {
		fmt.Fprintln(stderr, "faceidq-load: -ack-replicas must not be negative, and needs the `faceidq api` started here (no -target)")
		return 2
	}
	if o.serve {
		if o.target != "" || o.redisURL != "" || o.ackReplicas > 0 || o.window <= 0 {
			fmt.Fprintln(stderr, "faceidq-load: -serve starts its own `faceidq serve`: no -target, -redis-url or -ack-replicas; -window must be positive")
			return 2
		}
		if err := measureServe(ctx, o, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "faceidq-load:", err)
			return 1
		}
		return 0
	}
	if err := measure(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "faceidq-load:", err)
		return 1
	}
	return 0
}

// target is one server under load.
type target struct {
	name, url, token string
	pid              int            // 0 when not started here
	proc             *proctest.Proc // nil when not started here
}

func measure(ctx context.Context, o options, stdout, log io.Writer) error {
	dir, err := os.MkdirTemp("", "faceidq-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var procs []*proctest.Proc
	defer func() {
		for _, p := range procs {
			_, _ = p.Term(30 * time.Second)
		}
	}()

	redisPid := 0
	if o.redisURL == "" {
		red, err := redisproc.Start(redisproc.Options{Dir: dir})
		if err != nil {
			return err
		}
		defer red.Stop()
		o.redisURL, redisPid = red.URL(), red.Pid()
		fmt.Fprintf(log, "started redis-server on %s\n", red.Addr())
		for i := range o.ackReplicas {
			rdir := filepath.Join(dir, "replica"+strconv.Itoa(i+1))
			if err := os.Mkdir(rdir, 0o700); err != nil {
				return err
			}
			rep, err := redisproc.Start(redisproc.Options{Dir: rdir, Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(red.Port)}})
			if err != nil {
				return err
			}
			defer rep.Stop()
			fmt.Fprintf(log, "started replica redis-server on %s\n", rep.Addr())
		}
	}
	ropt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return fmt.Errorf("-redis-url: %w", err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	if o.ackReplicas > 0 {
		if err := waitReplicas(ctx, rdb, o.ackReplicas, 30*time.Second); err != nil {
			return err
		}
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	floorAddr, err := freeAddr()
	if err != nil {
		return err
	}
	fl, err := proctest.Start("floor", self, []string{"floor", "-redis-url", o.redisURL, "-listen", floorAddr}, nil, log)
	if err != nil {
		return err
	}
	procs = append(procs, fl)
	targets := []target{{name: "floor", url: "http://" + floorAddr, pid: fl.Cmd.Process.Pid, proc: fl}}

	if o.target == "" {
		if o.faceidq == "" {
			fmt.Fprintf(log, "building faceidq into %s\n", dir)
			if o.faceidq, err = proctest.Build(dir); err != nil {
				return fmt.Errorf("build faceidq (run inside the repository, or pass -faceidq): %w", err)
			}
		}
		o.token = randomToken()
		acks := []int{0}
		if o.ackReplicas > 0 {
			acks = append(acks, o.ackReplicas)
		}
		for _, n := range acks {
			t, err := startAPI(o, dir, n, log)
			if err != nil {
				return err
			}
			procs = append(procs, t.proc)
			targets = append(targets, t)
		}
	} else {
		targets = append(targets, target{name: "faceidq", url: o.target, token: o.token})
	}
	for _, t := range targets {
		var err error
		if t.proc != nil {
			err = t.proc.WaitHTTP(t.url+"/healthz", 60*time.Second)
		} else {
			err = proctest.WaitURL(t.url+"/healthz", 60*time.Second)
		}
		if err != nil {
			return fmt.Errorf("%s at %s: %w", t.name, t.url, err)
		}
	}

	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}, Timeout: 30 * time.Second}

	var results []result
	for _, phase := range []string{"saturation", "fixed rate"} {
		for _, t := range targets {
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				return fmt.Errorf("flush Redis: %w", err)
			}
			fmt.Fprintf(log, "%s: %s for %s (after %s of warm-up)\n", t.name, phase, o.duration, o.warmup)
			if o.warmup > 0 {
				load(ctx, client, t, phase, o, o.warmup)
			}
			before := [3]time.Duration{cpuTime(redisPid), cpuTime(t.pid), cpuTime(os.Getpid())}
			r := load(ctx, client, t, phase, o, o.duration)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			after := [3]time.Duration{cpuTime(redisPid), cpuTime(t.pid), cpuTime(os.Getpid())}
			for i := range r.cpu {
				if before[i] >= 0 && after[i] >= 0 && r.ok > 0 {
					r.cpu[i] = (after[i] - before[i]) / time.Duration(r.ok)
				}
			}
			results = append(results, r)
		}
	}
	report(stdout, o, results)
	return nil
}

// startAPI starts `faceidq api` on o.redisURL, with FACEIDQ_ACK_REPLICAS=ackReplicas
// when positive; its log goes to a file in dir.
func startAPI(o options, dir string, ackReplicas int, log io.Writer) (target, error) {
	name, env := "faceidq", map[string]string{"REDIS_URL": o.redisURL, "FACEIDQ_API_TOKENS": o.token}
	if ackReplicas > 0 {
		name = "faceidq+ack" + strconv.Itoa(ackReplicas)
		env["FACEIDQ_ACK_REPLICAS"] = strconv.Itoa(ackReplicas)
	}
	addr, err := freeAddr()
	if err != nil {
		return target{}, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return target{}, err
	}
	api, err := proctest.Start(name, o.faceidq, []string{"api", "--listen", addr, "--log-level", "warn"}, env, logf)
	if err != nil {
		logf.Close()
		return target{}, err
	}
	go func() { <-api.Done(); logf.Close() }() // the log file lives as long as the process
	fmt.Fprintf(log, "started %s on %s\n", name, addr)
	return target{name: name, url: "http://" + addr, token: o.token, pid: api.Cmd.Process.Pid, proc: api}, nil
}

// waitReplicas waits until the master behind rdb has n replicas online.
func waitReplicas(ctx context.Context, rdb *redis.Client, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		info, err := rdb.Info(ctx, "replication").Result()
		online := strings.Count(info, ",state=online,")
		if err == nil && online >= n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d replicas online after %s (%v):\n%s", online, n, timeout, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func freeAddr() (string, error) {
	p, err := redisproc.FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// result is one measured phase.
type result struct {
	target, phase string
	offered       int // requests per second, 0 for saturation
	ok, failed    int
	elapsed       time.Duration
	p50, p99, max time.Duration
	firstFailure  string
	cpu           [3]time.Duration // CPU per successful request: redis-server, server, this generator
}

func (r result) rps() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// load runs one phase against t for d and measures it.
func load(ctx context.Context, client *http.Client, t target, phase string, o options, d time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, int(d.Seconds()*float64(o.rate))+1024)
		failed    atomic.Int64
		firstFail atomic.Value
	)
	one := func(due time.Time) {
		status, err := post(client, t)
		lat := time.Since(due)
		if err != nil || status < 200 || status > 299 {
			failed.Add(1)
			if err == nil {
				err = fmt.Errorf("HTTP %d", status)
			}
			if ctx.Err() == nil {
				firstFail.CompareAndSwap(nil, err.Error())
			}
			return
		}
		mu.Lock()
		latencies = append(latencies, lat)
		mu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	if phase == "saturation" {
		for range o.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					one(time.Now())
				}
			}()
		}
	} else {
		slots := make(chan struct{}, o.concurrency)
		interval := time.Second / time.Duration(o.rate)
	send:
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if wait := time.Until(due); wait > time.Millisecond {
				select {
				case <-ctx.Done():
					break send
				case <-time.After(wait):
				}
			}
			select {
			case <-ctx.Done():
				break send
			case slots <- struct{}{}:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				one(due)
				<-slots
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	r := result{target: t.name, phase: phase, ok: len(latencies), failed: int(failed.Load()), elapsed: elapsed}
	if phase != "saturation" {
		r.offered = o.rate
	}
	if n := len(latencies); n > 0 {
		r.p50, r.p99, r.max = latencies[n*50/100], latencies[min(n-1, n*99/100)], latencies[n-1]
	}
	if f, ok := firstFail.Load().(string); ok {
		r.firstFailure = f
	}
	return r
}

func post(client *http.Client, t target) (int, error) {
	req, err := http.NewRequest("POST", t.url+"/v1/tokens", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func report(w io.Writer, o options, rs []result) {
	fmt.Fprintf(w, "\nPOST /v1/tokens, concurrency %d, %s per phase, GOMAXPROCS of this machine: %d CPUs\n\n", o.concurrency, o.duration, runtime.NumCPU())
	tw := 8
	for _, r := range rs {
		tw = max(tw, len(r.target))
	}
	fmt.Fprintf(w, "%-*s %-11s %8s %10s %9s %9s %9s %7s   %s\n", tw, "target", "phase", "offered", "req/s", "p50", "p99", "max", "failed",
		"CPU per request: redis / server / generator")
	for _, r := range rs {
		offered := "-"
		if r.offered > 0 {
			offered = strconv.Itoa(r.offered)
		}
		fmt.Fprintf(w, "%-*s %-11s %8s %10.0f %9s %9s %9s %7d   %s / %s / %s\n", tw, r.target, r.phase, offered, r.rps(),
			r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.max.Round(100*time.Microsecond), r.failed,
			us(r.cpu[0]), us(r.cpu[1]), us(r.cpu[2]))
		if r.firstFailure != "" {
			fmt.Fprintf(w, "         first failure: %s\n", r.firstFailure)
		}
	}
	by := map[string]result{}
	for _, r := range rs {
		by[r.target+"/"+r.phase] = r
	}
	fmt.Fprintln(w)
	for _, phase := range []string{"saturation", "fixed rate"} {
		f, q := by["floor/"+phase], by["faceidq/"+phase]
		if f.rps() > 0 {
			fmt.Fprintf(w, "%-11s faceidq/floor req/s = %.2f   p99 faceidq %s vs floor %s\n", phase, q.rps()/f.rps(),
				q.p99.Round(10*time.Microsecond), f.p99.Round(10*time.Microsecond))
		}
		if a := by["faceidq+ack"+strconv.Itoa(o.ackReplicas)+"/"+phase]; o.ackReplicas > 0 && q.rps() > 0 {
			fmt.Fprintf(w, "%-11s %s/faceidq req/s = %.2f   p50 %s vs %s   p99 %s vs %s\n", phase, a.target, a.rps()/q.rps(),
				a.p50.Round(10*time.Microsecond), q.p50.Round(10*time.Microsecond),
				a.p99.Round(10*time.Microsecond), q.p99.Round(10*time.Microsecond))
		}
	}
}

// floor serves the baseline: read the body, asynq Enqueue it, answer 202.
func floor(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("faceidq-load floor", flag.ContinueOnError)
	redisURL := fs.String("redis-url", "", "Redis")
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ropt, err := redis.ParseURL(*redisURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 2
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	client := asynq.NewClientFromRedisClient(rdb)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 9<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		info, err := client.EnqueueContext(r.Context(), asynq.NewTask(tasks.TypeApplyToken, b), asynq.Queue(tasks.QueueInteractive))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "{\"JobId\":%q}\n", info.ID)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /v1/tokens", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	return 0
}

func us(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + "µs"
}

// cpuTime returns the user+system CPU time of process pid from /proc (Linux), or -1.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * clockTick
}
