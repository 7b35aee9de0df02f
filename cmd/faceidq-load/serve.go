package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/pipeline"
	"github.com/faceidq/faceidq/internal/proctest"
	"github.com/faceidq/faceidq/tasks"
)

// measureServe profiles `faceidq serve` on its embedded Redis (-serve): POST
// /v1/tokens at saturation with o.concurrency clients, its pipeline paused so that
// every job stays queued, reported in windows of o.window as the backlog grows, with
// the process's resident memory per queued job.
func measureServe(ctx context.Context, o options, stdout, log io.Writer) error {
	dir, err := os.MkdirTemp("", "faceidq-load-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.faceidq == "" {
		fmt.Fprintf(log, "building faceidq into %s\n", dir)
		if o.faceidq, err = proctest.Build(dir); err != nil {
			return fmt.Errorf("build faceidq (run inside the repository, or pass -faceidq): %w", err)
		}
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return err
	}
	redisAddr, err := freeAddr()
	if err != nil {
		return err
	}
	o.token = randomToken()
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	srv, err := proctest.Start("serve", o.faceidq, []string{"serve", "--listen", apiAddr, "--embedded-redis-listen", redisAddr, "--log-level", "warn"},
		map[string]string{"FACEIDQ_API_TOKENS": o.token}, logf)
	if err != nil {
		return err
	}
	defer func() { _, _ = srv.Term(30 * time.Second) }()
	t := target{name: "serve", url: "http://" + apiAddr, token: o.token, pid: srv.Cmd.Process.Pid, proc: srv}
	if err := srv.WaitHTTP(t.url+"/healthz", 60*time.Second); err != nil {
		return fmt.Errorf("serve at %s: %w", t.url, err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	if _, err := pipeline.New(rdb).Pause(ctx, pipeline.ReasonOperator); err != nil {
		return fmt.Errorf("pause the pipeline: %w", err)
	}
	ins := asynq.NewInspectorFromRedisClient(rdb)
	pending := func() int {
		info, err := ins.GetQueueInfo(tasks.QueueInteractive)
		if err != nil { // no such queue yet
			return 0
		}
		return info.Pending
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}, Timeout: 30 * time.Second}

	fmt.Fprintf(stdout, "faceidq serve (embedded Redis and simulator, pipeline paused), POST /v1/tokens at saturation, %d clients, GOMAXPROCS of this machine\n\n", o.concurrency)
	fmt.Fprintln(stdout, "| window | queued at start | req/s | p50 | p99 | RSS | RSS per queued job |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|")
	rss0 := rssOf(t.pid)
	for w := time.Duration(0); w < o.duration; w += o.window {
		queued := pending()
		r := load(ctx, client, t, "saturation", o, o.window)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rss, n := rssOf(t.pid), pending()
		per := "-"
		if n > 0 && rss > 0 && rss0 > 0 {
			per = fmt.Sprintf("%.1f KB", float64(rss-rss0)/float64(n)/1024)
		}
		fmt.Fprintf(stdout, "| %s–%s | %d | %.0f | %s | %s | %d MB | %s |\n", w, w+o.window, queued, r.rps(),
			r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), rss>>20, per)
		if r.failed > 0 {
			fmt.Fprintf(stdout, "  (%d failed: %s)\n", r.failed, r.firstFailure)
		}
	}
	fmt.Fprintf(stdout, "\nRSS before the load: %d MB; RSS per queued job counts the process's growth (live data and the garbage not yet returned) over the jobs queued\n", rss0>>20)
	return nil
}

// rssOf returns the resident set size of process pid in bytes, or -1.
func rssOf(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}
