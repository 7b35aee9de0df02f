// Command faceidq-bench measures faceidq's pipeline against the upstream simulator, side
// by side with asynq + a shared redis_rate limiter and asynq's wiki recipe (package
// internal/bench; method in docs/benchmarks.md).
//
//	go run ./cmd/faceidq-bench -workers 3 -duration 20s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/faceidq/faceidq/internal/bench"
	"github.com/faceidq/faceidq/tasks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "baseline-worker" {
		os.Exit(baselineWorker(ctx, os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "redis-rate-worker" {
		os.Exit(redisRateWorker(ctx, os.Args[2:]))
	}
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("faceidq-bench", flag.ContinueOnError)
	workers := fs.String("workers", "1,3,8", "worker process counts")
	modes := fs.String("modes", strings.Join(bench.Modes, ","), "what to measure: faceidq, redis_rate (asynq + a shared GCRA limiter), asynq-wiki (asynq's wiki recipe; alias asynq)")
	profiles := fs.String("profiles", "steady,varying", "latency profiles: steady (30ms), varying (30±20ms); burst: goodput and wasted calls of a burst with deadlines vs without, and the ETA error over a backlog (first -workers count)")
	burstJobs := fs.Int("burst-jobs", 3000, "burst profile: interactive jobs arriving over -burst-over")
	burstOver := fs.Duration("burst-over", 10*time.Second, "burst profile: the time they arrive over")
	burstMaxWait := fs.Duration("burst-max-wait", 30*time.Second, "burst profile: their MaxWait")
	etaJobs := fs.Int("eta-jobs", 5000, "burst profile: the backlog whose EstimatedStartAt is checked")
	duration := fs.Duration("duration", 60*time.Second, "measured time per scenario")
	warmup := fs.Duration("warmup", 5*time.Second, "unmeasured time before it")
	backlog := fs.Int("backlog", 5000, "batch jobs pending at the start of each scenario")
	every := fs.Duration("interactive-every", 500*time.Millisecond, "one interactive job this often")
	concurrency := fs.Int("concurrency", 32, "jobs at once per worker process")
	bin := fs.String("faceidq", "", "faceidq binary (default: go build ./cmd/faceidq)")
	webhookDelay := fs.Duration("webhook-delay", 0, "give every faceidq job a webhook to a local receiver this slow (e.g. 5s)")
	applyGet := fs.Bool("apply-get", false, "faceidq only: keep an Apply and a Get backlog pending together and measure each action's budget")
	getLane := fs.String("get-lane", "batch", "with -apply-get: the lane of the fetches (batch: behind the Apply backlog; interactive)")
	backlogLane := fs.String("backlog-lane", "batch", "the lane of the backlog (batch; interactive: a person-facing lane thousands deep)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	counts, err := bench.ParseInts(*workers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faceidq-bench: -workers:", err)
		return 2
	}
	modeList, err := bench.ParseModes(*modes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faceidq-bench: -modes:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "faceidq-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faceidq-bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	self, _ := os.Executable()
	o := bench.Options{
		Workers: counts, Modes: modeList, Profiles: strings.Split(*profiles, ","),
		Duration: *duration, Warmup: *warmup, Backlog: *backlog, InteractiveEvery: *every, Rate: 20,
		Concurrency: *concurrency, FaceidqBin: *bin, Self: self, Dir: dir, Log: os.Stderr, WebhookDelay: *webhookDelay,
		ApplyGet: *applyGet,
		Burst:    bench.BurstOptions{Jobs: *burstJobs, Over: *burstOver, MaxWait: *burstMaxWait, ETAJobs: *etaJobs},
	}
	for _, l := range []struct {
		flag, value string
		to          *tasks.Priority
	}{{"get-lane", *getLane, &o.GetLane}, {"backlog-lane", *backlogLane, &o.BacklogLane}} {
		switch p := tasks.Priority(l.value); p {
		case tasks.PriorityBatch, tasks.PriorityInteractive:
			*l.to = p
		default:
			fmt.Fprintf(os.Stderr, "faceidq-bench: -%s must be batch or interactive, not %q\n", l.flag, l.value)
			return 2
		}
	}
	if err := bench.Run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "faceidq-bench:", err)
		return 1
	}
	return 0
}

func baselineWorker(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("baseline-worker", flag.ContinueOnError)
	o := bench.BaselineOptions{SecretID: os.Getenv("TENCENTCLOUD_SECRET_ID"), SecretKey: os.Getenv("TENCENTCLOUD_SECRET_KEY")}
	fs.StringVar(&o.RedisURL, "redis", "", "Redis URL")
	fs.StringVar(&o.Endpoint, "endpoint", "", "upstream endpoint")
	fs.Float64Var(&o.Rate, "rate", 20, "whole budget")
	fs.IntVar(&o.Processes, "processes", 1, "worker processes sharing it")
	fs.IntVar(&o.Concurrency, "concurrency", 10, "jobs at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := bench.RunBaseline(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "baseline-worker:", err)
		return 1
	}
	return 0
}

func redisRateWorker(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("redis-rate-worker", flag.ContinueOnError)
	o := bench.RedisRateOptions{SecretID: os.Getenv("TENCENTCLOUD_SECRET_ID"), SecretKey: os.Getenv("TENCENTCLOUD_SECRET_KEY")}
	fs.StringVar(&o.RedisURL, "redis", "", "Redis URL")
	fs.StringVar(&o.Endpoint, "endpoint", "", "upstream endpoint")
	fs.IntVar(&o.Rate, "rate", 20, "whole budget, shared by every process")
	fs.IntVar(&o.Concurrency, "concurrency", 10, "jobs at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := bench.RunRedisRate(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "redis-rate-worker:", err)
		return 1
	}
	return 0
}
