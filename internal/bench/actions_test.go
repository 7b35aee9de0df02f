package bench

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/producer"
	"github.com/faceidq/faceidq/tasks"
)

// TestGetFeeder: the feeder fetches minted jobs once each, oldest first, skips a job
// minted out of order instead of stopping at it, and stops past the minting frontier.
func TestGetFeeder(t *testing.T) {
	ctx := context.Background()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	pr, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pr.Close)
	u := "https://example.com/bench"
	var ids []string
	for i := range 40 {
		extra := "b" + strconv.Itoa(i)
		j, _, err := pr.Submit(ctx, &tasks.TokenRequest{RedirectURL: &u, Extra: &extra, Priority: tasks.PriorityBatch}, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.JobId)
	}
	mint := func(idx ...int) {
		for _, i := range idx {
			rdb.HSet(ctx, keys.Result(ids[i]), tasks.FieldStatus, string(tasks.StatusSucceeded), tasks.FieldBizToken, "tok-"+ids[i])
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	queued := func() []string {
		list, err := insp.ListPendingTasks(tasks.Queue(tasks.TypeGetResult, tasks.PriorityBatch), asynq.PageSize(100))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ti := range list {
			p, err := tasks.DecodeGetPayload(ti.Payload)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p.JobID)
		}
		slices.Sort(got)
		return got
	}
	want := func(idx ...int) []string {
		var w []string
		for _, i := range idx {
			w = append(w, ids[i])
		}
		slices.Sort(w)
		return w
	}

	// Jobs 0-9 minted but 3 (deferred to the back of the backlog), and 15.
	mint(0, 1, 2, 4, 5, 6, 7, 8, 9, 15)
	f := newGetFeeder(pr, ids, tasks.PriorityBatch)
	now := time.Now()
	if err := f.feed(ctx, now, 2); err != nil {
		t.Fatal(err)
	}
	if got := queued(); !slices.Equal(got, want(0, 1)) {
		t.Fatalf("feed(2) queued %v, want the two oldest", got)
	}
	if err := f.feed(ctx, now, 100); err != nil {
		t.Fatal(err)
	}
	if got := queued(); !slices.Equal(got, want(0, 1, 2, 4, 5, 6, 7, 8, 9, 15)) {
		t.Fatalf("queued %v, want every minted job once", got)
	}
	if f.fetches != 10 || f.unminted != 1+5+maxMisses {
		t.Fatalf("fetches %d, unminted tries %d; want 10 and %d", f.fetches, f.unminted, 1+5+maxMisses)
	}
	// Job 3 minted late is fetched once its skip has passed; nothing is fetched twice.
	mint(3, 10)
	if err := f.feed(ctx, now.Add(getRetryUnminted), 100); err != nil {
		t.Fatal(err)
	}
	if got := queued(); !slices.Equal(got, want(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15)) {
		t.Fatalf("queued %v, want 3 and 10 added", got)
	}
}

func TestProbeMargin(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	ms := time.Millisecond
	tests := []struct {
		name  string
		at    []time.Duration // arrival times, in the order handled
		want  time.Duration
		known bool
	}{
		{"too few", []time.Duration{0, 10 * ms}, 0, false},
		{"paced", []time.Duration{0, 500 * ms, 1000 * ms, 1500 * ms}, 0, true},
		{"a third in a second", []time.Duration{0, 400 * ms, 900 * ms, 1600 * ms}, -100 * ms, true},
		{"order of handling does not matter", []time.Duration{900 * ms, 0, 400 * ms}, -100 * ms, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(nil)
			for _, d := range tt.at {
				p.arrivals = append(p.arrivals, arrival{at: t0.Add(d), ok: true})
			}
			if got, ok := p.margin(2); ok != tt.known || got != tt.want {
				t.Errorf("margin = %v, %v; want %v, %v", got, ok, tt.want, tt.known)
			}
		})
	}
}
