package campaign_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// inflightBy returns the jobs fed and not finished, by campaign.
func inflightBy(t *testing.T, rdb *redis.Client) map[string][]string {
	t.Helper()
	all, err := rdb.HGetAll(context.Background(), keys.FeedInflight).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for id, v := range all {
		st, _ := rdb.HGet(context.Background(), keys.Result(id), tasks.FieldStatus).Result()
		if tasks.Status(st).Final() {
			continue // fed, finished, not pruned yet
		}
		parts := strings.Fields(v)
		out[parts[1]] = append(out[parts[1]], id)
	}
	return out
}

// finishFed finishes every job fed so far, as a worker would.
func finishFed(t *testing.T, rdb *redis.Client, st *results.Store) {
	t.Helper()
	for _, ids := range inflightBy(t, rdb) {
		for _, id := range ids {
			finish(t, st, id, tasks.StatusSucceeded)
		}
	}
}

// tickCounts runs one feeding round and returns what it fed of campaigns a and b.
func tickCounts(t *testing.T, f *campaign.Feeder, rdb *redis.Client, a, b string) (int, int) {
	t.Helper()
	before := inflightBy(t, rdb)
	mustTick(t, f)
	after := inflightBy(t, rdb)
	return len(after[a]) - len(before[a]), len(after[b]) - len(before[b])
}

func TestFeederSharesByWeight(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	st := b.producer.Results()
	a := mustImport(t, m, ndjsonRows(200), campaign.ImportOptions{Name: "a"}).BatchId
	c := mustImport(t, m, ndjsonRows(200), campaign.ImportOptions{Name: "c", Weight: 3}).BatchId
	f := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, Window: 40})

	t.Run("1:3 fills the window 1:3", func(t *testing.T) {
		for round := range 2 {
			if na, nc := tickCounts(t, f, b.rdb, a, c); na != 10 || nc != 30 {
				t.Fatalf("round %d fed %d and %d, want 10 and 30", round, na, nc)
			}
			if na, nc := tickCounts(t, f, b.rdb, a, c); na != 0 || nc != 0 {
				t.Fatalf("fed %d and %d over the window", na, nc)
			}
			finishFed(t, b.rdb, st)
		}
	})
	t.Run("a small budget is split 1:3 too", func(t *testing.T) {
		g := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, Window: 40, MaxPending: 4})
		b.rdb.Del(ctx, keys.FeederLock) // g takes over feeding
		if na, nc := tickCounts(t, g, b.rdb, a, c); na != 1 || nc != 3 {
			t.Fatalf("fed %d and %d, want 1 and 3", na, nc)
		}
		finishFed(t, b.rdb, st)
		b.rdb.Del(ctx, keys.FeederLock)
	})
	t.Run("a new weight applies from the next round", func(t *testing.T) {
		in, err := m.SetWeight(ctx, a, 3)
		if err != nil || in.Weight != 3 {
			t.Fatalf("SetWeight = %+v, %v", in, err)
		}
		na, nc := tickCounts(t, f, b.rdb, a, c)
		if na+nc != 40 || na < 19 || na > 21 {
			t.Fatalf("fed %d and %d at 3:3, want 20 and 20 (±1)", na, nc)
		}
		finishFed(t, b.rdb, st)
	})
	t.Run("a campaign imported later gets its share of the room", func(t *testing.T) {
		d := mustImport(t, m, ndjsonRows(50), campaign.ImportOptions{Name: "d", Weight: 6}).BatchId
		// a, c and d at 3:3:6: the 40 jobs go 10, 10, 20.
		mustTick(t, f)
		by := inflightBy(t, b.rdb)
		if len(by[a]) != 10 || len(by[c]) != 10 || len(by[d]) != 20 {
			t.Fatalf("fed a %d, c %d, d %d; want 10, 10, 20", len(by[a]), len(by[c]), len(by[d]))
		}
		if _, err := m.Cancel(ctx, d); err != nil {
			t.Fatal(err)
		}
		finishFed(t, b.rdb, st)
	})
	t.Run("a paused campaign leaves the lane to the others", func(t *testing.T) {
		if _, err := m.Pause(ctx, a); err != nil {
			t.Fatal(err)
		}
		if na, nc := tickCounts(t, f, b.rdb, a, c); na != 0 || nc != 40 {
			t.Fatalf("fed %d and %d with a paused, want 0 and 40", na, nc)
		}
		finishFed(t, b.rdb, st)
		if _, err := m.Resume(ctx, a); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFeederLeavesLocalCampaignItsShare(t *testing.T) {
	m, b := setup(t, campaign.Config{})
	ctx := context.Background()
	path := imageCampaign(t, t.TempDir(), 50, 5, 1<<10)
	local, err := m.ImportFile(ctx, path, campaign.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := mustImport(t, m, ndjsonRows(100), campaign.ImportOptions{Name: "other"}).BatchId
	global := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, Window: 40})
	// Its importing process is away: the whole window goes to the other campaign.
	if _, n := tickCounts(t, global, b.rdb, local.BatchId, other); n != 40 {
		t.Fatalf("fed %d of the other campaign, want 40", n)
	}
	finishFed(t, b.rdb, b.producer.Results())
	// Its importing process feeds it: half the window is left to it.
	own := mustFeeder(t, campaign.FeederConfig{Redis: b.rdb, Window: 40, Batch: local.BatchId})
	if nl, n := tickCounts(t, own, b.rdb, local.BatchId, other); nl != 20 || n != 0 {
		t.Fatalf("the campaign's own feeder fed %d and %d, want 20 and 0", nl, n)
	}
	if nl, n := tickCounts(t, global, b.rdb, local.BatchId, other); nl != 0 || n != 20 {
		t.Fatalf("the global feeder fed %d and %d, want 0 and 20", nl, n)
	}
}

func TestWeightChecked(t *testing.T) {
	m, _ := setup(t, campaign.Config{})
	ctx := context.Background()
	isWeightError := func(err error) bool {
		var fe *faceid.FieldError
		return errors.As(err, &fe) && fe.Field == "weight"
	}
	for _, w := range []int{-1, campaign.MaxWeight + 1} {
		if _, err := m.Import(ctx, strings.NewReader(ndjsonRows(1)), campaign.ImportOptions{Weight: w}); !isWeightError(err) {
			t.Errorf("import at weight %d: %v, want an error naming weight", w, err)
		}
	}
	sum := mustImport(t, m, ndjsonRows(2), campaign.ImportOptions{Name: "w"})
	if in, _ := m.Info(ctx, sum.BatchId); in.Weight != campaign.DefaultWeight {
		t.Fatalf("weight of a new campaign = %d", in.Weight)
	}
	for _, w := range []int{0, -3, campaign.MaxWeight + 1} {
		if _, err := m.SetWeight(ctx, sum.BatchId, w); !isWeightError(err) {
			t.Errorf("SetWeight(%d): %v, want an error naming weight", w, err)
		}
	}
	mustImport(t, m, ndjsonRows(2), campaign.ImportOptions{Name: "w", Weight: 7})
	if in, _ := m.Info(ctx, sum.BatchId); in.Weight != 7 {
		t.Fatalf("weight after an import at 7 = %d", in.Weight)
	}
	mustImport(t, m, ndjsonRows(3), campaign.ImportOptions{Name: "w"})
	if in, _ := m.Info(ctx, sum.BatchId); in.Weight != 7 {
		t.Fatalf("an import without a weight changed it to %d", in.Weight)
	}
	if _, err := m.SetWeight(ctx, "b_nope", 2); !errors.Is(err, campaign.ErrNotFound) {
		t.Errorf("SetWeight of a missing campaign: %v", err)
	}
	if _, err := m.Cancel(ctx, sum.BatchId); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetWeight(ctx, sum.BatchId, 2); !errors.Is(err, campaign.ErrCanceled) {
		t.Errorf("SetWeight of a canceled campaign: %v", err)
	}
}
