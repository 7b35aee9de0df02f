package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// verifyOpts are the options of verify.
type verifyOpts struct {
	redisURL, wait *option
}

func verifyFlags() (*flags, *verifyOpts) {
	f := newFlags("verify")
	addLog(f)
	o := &verifyOpts{}
	o.redisURL = f.opt("redis-url", "REDIS_URL", "", "Redis URL (required)")
	o.wait = f.opt("wait", "", "0s", "wait this long for the upstream's answer")
	return f, o
}

// runVerify fetches a job's verification result now (as POST
// /v1/tokens/{JobId}/verification) and prints the job.
func runVerify(ctx context.Context, e *env, args []string) error {
	f, o := verifyFlags()
	pos, err := f.parse(args, e.getenv)
	if err != nil {
		return err
	}
	id, wait, err := jobArgs("verify", pos, o.wait)
	if err != nil {
		return err
	}
	rdb, err := connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		return err
	}
	asked := time.Now().Truncate(time.Millisecond)
	switch err := p.Fetch(ctx, id, tasks.TriggerNow, tasks.PriorityInteractive); {
	case errors.Is(err, results.ErrNotFound):
		return fmt.Errorf("no job %s (unknown, or its result expired)", id)
	case errors.Is(err, results.ErrNoToken):
		return fmt.Errorf("job %s has no BizToken (not succeeded yet, failed or canceled): nothing to verify", id)
	case err != nil:
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		job, err := p.Get(ctx, id)
		if err != nil {
			return err
		}
		v := job.Verification
		if (v != nil && v.FetchedAt != nil && !v.FetchedAt.Before(asked)) || !time.Now().Before(deadline) {
			return printJSON(e.stdout, job)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
