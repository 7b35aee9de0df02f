package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/faceidq/faceidq/internal/waittest"
)

// freeAddr returns a loopback address nothing listens on (for the moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// waitLog waits until the program's log matches re and returns the first match's
// groups.
func (p *program) waitLog(re *regexp.Regexp) []string {
	p.t.Helper()
	var m []string
	waittest.UntilReason(p.t, 30*time.Second, "a log line matching "+re.String(), func() (bool, string) {
		m = re.FindStringSubmatch(p.stderr.String())
		return m != nil, p.stderr.String()
	})
	return m
}

// TestServeEmbeddedRedisShared: `serve` without REDIS_URL logs the exact REDIS_URL of
// its embedded Redis, another faceidq command works with it, and stopping `serve`
// says how many jobs that were not final are lost (submitted ones and a campaign's).
func TestServeEmbeddedRedisShared(t *testing.T) {
	addr := freeAddr(t)
	p := start(t, map[string]string{}, "serve", "--listen", "127.0.0.1:0", "--embedded-redis-listen", addr, "--simulator-seed", "5")
	c := &client{t: t, base: "http://" + p.addr("api")}
	url := p.waitLog(regexp.MustCompile(`REDIS_URL=(redis://[0-9.:]+/0)`))[1]
	if url != "redis://"+addr+"/0" {
		t.Fatalf("logged %s, want redis://%s/0", url, addr)
	}
	if strings.Contains(p.stderr.String(), "no other process can share it") {
		t.Error("the log still says no other process can share the embedded Redis")
	}
	if !strings.Contains(p.stderr.String(), "--simulator-seed 5 repeats") {
		t.Errorf("the simulator's seed is not logged:\n%s", p.stderr)
	}

	if r := c.do("POST", "/v1/pipeline/pause", ""); r.status != http.StatusOK {
		t.Fatalf("pause = %d %s", r.status, r.body)
	}
	var ids []string
	for range 3 {
		r := c.do("POST", "/v1/tokens", okBody, "Content-Type", "application/json")
		ids = append(ids, r.job(t).JobId)
	}
	rows := strings.Repeat(okBody+"\n", 4)
	if r := c.do("POST", "/v1/batches?name=lost", rows, "Content-Type", "application/x-ndjson"); r.status != http.StatusAccepted {
		t.Fatalf("POST /v1/batches = %d %s", r.status, r.body)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"status", ids[0]}, getenvFrom(map[string]string{"REDIS_URL": url}), &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), ids[0]) {
		t.Fatalf("faceidq status with REDIS_URL=%s: exit %d\n%s%s", url, code, stdout.String(), stderr.String())
	}

	if code := p.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if logs := p.stderr.String(); !strings.Contains(logs, "7 jobs not final are lost") {
		t.Errorf("the shutdown does not count the 7 lost jobs (3 submitted, 4 in a campaign):\n%s", logs)
	}
}

func TestServeEmbeddedNothingLost(t *testing.T) {
	p := start(t, map[string]string{}, "serve", "--listen", "127.0.0.1:0", "--embedded-redis-listen", freeAddr(t))
	p.addr("api")
	if code := p.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if logs := p.stderr.String(); !strings.Contains(logs, "no job was left unfinished") {
		t.Errorf("the shutdown does not say that nothing was lost:\n%s", logs)
	}
}

// TestEmbeddedRedisAddress: the default address falls back to a free port when
// taken, saying so; an address given explicitly must be free.
func TestEmbeddedRedisAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	var logs bytes.Buffer
	mr, err := startEmbeddedRedis(zerolog.New(&logs), addr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	if mr.Addr() == addr || !strings.Contains(logs.String(), "is taken") {
		t.Errorf("default taken: listening on %s (taken %s); log %s", mr.Addr(), addr, logs.String())
	}
	if mr, err := startEmbeddedRedis(zerolog.Nop(), addr, true); err == nil {
		mr.Close()
		t.Error("an explicit address that is taken was not refused")
	}
	if defaultEmbeddedRedis != "127.0.0.1:6380" {
		t.Errorf("the README names 127.0.0.1:6380, the default is %s", defaultEmbeddedRedis)
	}
}

func TestEmbeddedUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"serve", "--embedded-redis-listen", "0.0.0.0:6380"}, nil, "--embedded-redis-listen"},
		{[]string{"serve", "--embedded-redis-listen", ":6380"}, nil, "not a loopback"},
		{[]string{"serve"}, map[string]string{"FACEIDQ_EMBEDDED_REDIS_LISTEN": "10.0.0.1:6380"}, "FACEIDQ_EMBEDDED_REDIS_LISTEN"},
		{[]string{"serve", "--simulator-seed", "x"}, nil, "--simulator-seed"},
		{[]string{"serve", "--simulator-seed", "0"}, nil, "--simulator-seed"},
		{[]string{"simulate", "--seed", "-1"}, nil, "--seed"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, getenvFrom(tt.env), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 naming %s", code, stderr.String(), tt.want)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-h"}, getenvFrom(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("serve -h exit %d", code)
	}
	for _, s := range []string{"-embedded-redis-listen", "FACEIDQ_EMBEDDED_REDIS_LISTEN", "127.0.0.1:6380", "-simulator-seed"} {
		if !strings.Contains(stdout.String()+stderr.String(), s) {
			t.Errorf("serve -h does not mention %s", s)
		}
	}
}

// TestSimulateSeed: `simulate` without --seed draws a random seed and logs it; with
// --seed it uses and logs that one.
func TestSimulateSeed(t *testing.T) {
	seedRE := regexp.MustCompile(`--seed (\d+) repeats this run`)
	seedOf := func(args ...string) string {
		p := start(t, map[string]string{}, append([]string{"simulate", "--listen", "127.0.0.1:0"}, args...)...)
		p.addr("simulator")
		return p.waitLog(seedRE)[1]
	}
	if a, b := seedOf(), seedOf(); a == b {
		t.Errorf("two runs without --seed both used seed %s", a)
	}
	if s := seedOf("--seed", "7"); s != "7" {
		t.Errorf("--seed 7 logged seed %s", s)
	}
}
