package campaign_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// succeededOf counts the succeeded jobs of each campaign, read in one pipeline so
// that the counts are taken at about the same moment.
func succeededOf(t *testing.T, rdb *redis.Client, batches ...string) []int {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	var cmds [][]*redis.StringCmd
	for _, id := range batches {
		ids, err := rdb.LRange(ctx, keys.BatchJobs(id), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var c []*redis.StringCmd
		for _, j := range ids {
			c = append(c, pipe.HGet(ctx, keys.Result(j), tasks.FieldStatus))
		}
		cmds = append(cmds, c)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(batches))
	for i, c := range cmds {
		for _, cmd := range c {
			if tasks.Status(cmd.Val()) == tasks.StatusSucceeded {
				out[i]++
			}
		}
	}
	return out
}

// progressRun follows two campaigns of n jobs each from the moment (and the counts)
// given, and calls check with their progress since then at every sample while both
// run, and once more when the first is done (last true). It returns the samples.
func progressRun(t *testing.T, rdb *redis.Client, a, b string, n int, base []int, check func(da, db int, last bool) error) []string {
	t.Helper()
	var samples []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		s := succeededOf(t, rdb, a, b)
		da, db := s[0]-base[0], s[1]-base[1]
		samples = append(samples, fmt.Sprintf("%d/%d", s[0], s[1]))
		last := s[0] == n || s[1] == n
		if err := check(da, db, last); err != nil {
			t.Fatalf("%v; since %v: +%d and +%d; samples: %s", err, base, da, db, strings.Join(samples, " "))
		}
		if last {
			return samples
		}
		if time.Now().After(deadline) {
			t.Fatalf("no campaign done in time; samples: %s", strings.Join(samples, " "))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestFairCampaignsEndToEnd drains campaigns imported one after another through a
// real worker and the simulator: while both run, campaigns of weights 1 and 1
// progress at the same rate, 1 and 3 at rates 1:3, and a weight changed at run
// time applies.
func TestFairCampaignsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 2,800 jobs through a worker")
	}
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	startWorker(t, b.rdb, 400)
	f := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, Window: 12, Interval: 10 * time.Millisecond})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(fctx, func(err error) { t.Errorf("feeder: %v", err) }) }()
	t.Cleanup(func() { stop(); <-done })

	// Two campaigns imported one after another, the feeder running: the first has
	// a head start (what was fed of it before the second existed, at most the
	// window) and from then on they go at the same pace.
	pair := func(name string, n, wa, wb int) (string, string, []int) {
		a := mustImport(t, m, ndjsonRows(n), campaign.ImportOptions{Name: name + "-a", Weight: wa}).BatchId
		c := mustImport(t, m, ndjsonRows(n), campaign.ImportOptions{Name: name + "-b", Weight: wb}).BatchId
		return a, c, succeededOf(t, b.rdb, a, c)
	}
	within := func(da, db int, ratio, tol float64) error {
		if got := float64(da) / float64(db); got < ratio*(1-tol) || got > ratio*(1+tol) {
			return fmt.Errorf("progress ratio %.3f, want %.3f ±%.0f%%", got, ratio, tol*100)
		}
		return nil
	}

	t.Run("1:1", func(t *testing.T) {
		a, c, base := pair("even", 600, 1, 1)
		checked := 0
		samples := progressRun(t, b.rdb, a, c, 600, base, func(da, db int, last bool) error {
			if max(da, db) < 200 && !last {
				return nil
			}
			checked++
			return within(da, db, 1, 0.10)
		})
		if checked < 3 {
			t.Fatalf("only %d samples checked: %v", checked, samples)
		}
		t.Logf("samples (succeeded of each): %s", strings.Join(samples, " "))
		waitDone(t, m, a, 30*time.Second)
		waitDone(t, m, c, 30*time.Second)
	})
	t.Run("1:3", func(t *testing.T) {
		a, c, base := pair("third", 400, 1, 3)
		checked := 0
		samples := progressRun(t, b.rdb, a, c, 400, base, func(da, db int, last bool) error {
			if db < 200 && !last {
				return nil
			}
			checked++
			return within(da, db, 1.0/3, 0.25)
		})
		if checked < 2 {
			t.Fatalf("only %d samples checked: %v", checked, samples)
		}
		t.Logf("samples (succeeded of each): %s", strings.Join(samples, " "))
		waitDone(t, m, a, 30*time.Second)
		waitDone(t, m, c, 30*time.Second)
	})
	t.Run("weight changed at run time", func(t *testing.T) {
		a, c, base := pair("change", 500, 1, 1)
		waittest.UntilReason(t, 60*time.Second, "60 jobs of each campaign succeeded", func() (bool, string) {
			s := succeededOf(t, b.rdb, a, c)
			return s[0]-base[0] >= 60 && s[1]-base[1] >= 60, fmt.Sprintf("%v since %v", s, base)
		})
		if _, err := m.SetWeight(ctx, c, 3); err != nil {
			t.Fatal(err)
		}
		base = succeededOf(t, b.rdb, a, c)
		checked := 0
		samples := progressRun(t, b.rdb, a, c, 500, base, func(da, db int, last bool) error {
			if db < 150 && !last {
				return nil
			}
			checked++
			return within(da, db, 1.0/3, 0.30)
		})
		if checked < 2 {
			t.Fatalf("only %d samples checked: %v", checked, samples)
		}
		t.Logf("samples after the change (succeeded of each): %s", strings.Join(samples, " "))
	})
}
