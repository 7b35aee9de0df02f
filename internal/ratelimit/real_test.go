package ratelimit

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
)

// These tests run on a real redis-server with Redis's real clock. Their assertions are
// about slots on Redis's clock, which the script guarantees whatever the scheduling of
// this machine; wall-clock durations only bound how long they run.

// fleet is one limiter key shared by several processes, each with its own client.
type fleet struct {
	limiters []*Limiter

	mu     sync.Mutex
	grants []Reservation
	by     map[*Limiter]map[Lane]int
}

func newFleet(t *testing.T, clients []redis.Scripter, cfg Config) *fleet {
	t.Helper()
	f := &fleet{by: map[*Limiter]map[Lane]int{}}
	for _, c := range clients {
		l := mustNew(t, c, cfg)
		f.limiters = append(f.limiters, l)
		f.by[l] = map[Lane]int{}
	}
	return f
}

// realClients returns n clients (n simulated processes) of one real redis-server.
func realClients(t *testing.T, n int) []redis.Scripter {
	t.Helper()
	s := redistest.Start(t, redistest.Options{})
	var cs []redis.Scripter
	for range n {
		cs = append(cs, s.Client(t))
	}
	return cs
}

// run starts a waiter in lane on l that loops until ctx is done, recording its grants
// and observing each call as answered at once.
func (f *fleet) run(t *testing.T, ctx context.Context, wg *sync.WaitGroup, l *Limiter, lane Lane) {
	wg.Go(func() {
		for {
			res, err := l.Wait(ctx, lane)
			if err != nil {
				if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
					t.Errorf("Wait(%s): %v", lane, err)
				}
				return
			}
			l.Observe(res, time.Now())
			f.mu.Lock()
			f.grants = append(f.grants, res)
			f.by[l][lane]++
			f.mu.Unlock()
		}
	})
}

func (f *fleet) count(l *Limiter, lane Lane) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.by[l][lane]
}

// assertPaced checks, on Redis's clock, that consecutive slots are at least the
// interval in force apart and that no sliding second holds more than rate slots. It
// returns the share of the rate used between the first and the last slot.
func assertPaced(t *testing.T, grants []Reservation, rate int) float64 {
	t.Helper()
	g := slices.Clone(grants)
	slices.SortFunc(g, func(a, b Reservation) int { return a.Slot.Compare(b.Slot) })
	if len(g) < 2 {
		t.Fatalf("only %d grants", len(g))
	}
	for i := 1; i < len(g); i++ {
		if gap := g[i].Slot.Sub(g[i-1].Slot); gap < g[i-1].Interval {
			t.Errorf("slots %d and %d are %v apart, less than the interval %v", i-1, i, gap, g[i-1].Interval)
		}
	}
	most := 0
	for i, j := 0, 0; i < len(g); i++ {
		for j < len(g) && g[j].Slot.Sub(g[i].Slot) < time.Second {
			j++
		}
		most = max(most, j-i)
	}
	if most > rate {
		t.Errorf("%d slots within one second, more than the rate %d", most, rate)
	}
	span := g[len(g)-1].Slot.Sub(g[0].Slot).Seconds()
	used := float64(len(g)-1) / span / float64(rate)
	t.Logf("%d grants, at most %d in any second, %.1f%% of the rate used, last interval %v",
		len(g), most, 100*used, g[len(g)-1].Interval)
	return used
}

func TestRealGlobalPacing(t *testing.T) {
	for _, lane := range []Lane{Interactive, Batch} {
		t.Run(lane.String()+" flood from 3 processes", func(t *testing.T) {
			f := newFleet(t, realClients(t, 3), Config{Key: testKey})
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			var wg sync.WaitGroup
			for _, l := range f.limiters {
				for range 8 {
					f.run(t, ctx, &wg, l, lane)
				}
			}
			wg.Wait()
			assertPaced(t, f.grants, 20)
			for i, l := range f.limiters {
				if f.count(l, lane) == 0 {
					t.Errorf("process %d got no %s slot", i, lane)
				}
			}
		})
	}
}

func TestRealInteractiveAheadOfBatch(t *testing.T) {
	f := newFleet(t, realClients(t, 3), Config{Key: testKey})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 50 {
		f.run(t, ctx, &wg, f.limiters[i%3], Batch)
	}
	total := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.grants)
	}
	waittest.Until(t, waittest.DefaultTimeout, "batch waiters to get going", func() bool { return total() >= 5 })

	var interactive []Reservation
	worst := 0.0
	for i := range 10 {
		l := f.limiters[i%3]
		// Arrive anywhere within an interval (right after a slot, the next one is
		// not booked yet).
		time.Sleep(time.Duration(i) * l.Interval() / 10)
		res, err := l.Wait(context.Background(), Interactive)
		if err != nil {
			t.Fatalf("interactive Wait: %v", err)
		}
		l.Observe(res, time.Now())
		ahead := res.Slot.Sub(res.Reserved)
		worst = max(worst, float64(ahead)/float64(res.Interval))
		// It takes a provisional batch slot, or the slot after one being claimed:
		// at most one interval and a claim window ahead (1.5 intervals allow for a
		// slow machine's round trips).
		if ahead > 3*res.Interval/2 {
			t.Errorf("interactive slot %d was %v ahead of its request behind 50 batch waiters, more than 1.5 intervals (%v)",
				i, ahead, 3*res.Interval/2)
		}
		interactive = append(interactive, res)
	}
	var preempted uint64
	for _, l := range f.limiters {
		preempted += l.Stats().Interactive.Preempted
	}
	t.Logf("interactive slots behind 50 batch waiters: at most %.2f intervals ahead of the request; %d of 10 took a batch slot", worst, preempted)
	if preempted == 0 {
		t.Error("no interactive reservation took a provisional batch slot")
	}
	// Nobody starves: every process keeps getting batch slots.
	waittest.Until(t, waittest.DefaultTimeout, "3 batch slots for every process and 30 in all", func() bool {
		return total() >= 30 && f.count(f.limiters[0], Batch) >= 3 &&
			f.count(f.limiters[1], Batch) >= 3 && f.count(f.limiters[2], Batch) >= 3
	})
	cancel()
	wg.Wait()
	assertPaced(t, append(f.grants, interactive...), 20)
	for i, l := range f.limiters {
		t.Logf("process %d: %+v", i, l.Stats().Batch)
	}
}

func TestRealPenalizeRecovers(t *testing.T) {
	ctx := context.Background()
	l := mustNew(t, realClients(t, 1)[0], Config{Key: testKey})
	if err := l.Penalize(ctx, Reservation{}); err != nil {
		t.Fatal(err)
	}
	r, err := l.Rate(ctx)
	if err != nil || r < 14 || r > 15 {
		t.Fatalf("Rate after a penalty = %v, %v; want about 14", r, err)
	}
	waittest.Until(t, waittest.DefaultTimeout, "the rate to climb back above 15", func() bool {
		r, err := l.Rate(ctx)
		return err == nil && r > 15
	})
}

func TestRealScriptFlushed(t *testing.T) {
	ctx := context.Background()
	rdb := realClients(t, 1)[0]
	l := mustNew(t, rdb, Config{Key: testKey})
	mustReserve(t, l, Batch)
	if err := rdb.(*redis.Client).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.reserve(ctx, Batch); err != nil {
		t.Fatalf("reserve after SCRIPT FLUSH: %v", err)
	}
}

// TestRealCluster runs the limiter through a *redis.ClusterClient on a one-node cluster
// holding every slot: the single hash-tagged key and the script route like any command.
func TestRealCluster(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t, redistest.Options{Args: []string{"--cluster-enabled", "yes"}})
	node := s.Client(t)
	if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	waittest.Until(t, waittest.DefaultTimeout, "cluster_state:ok", func() bool {
		info, err := node.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{s.Addr()}})
	t.Cleanup(func() { _ = cc.Close() })

	if !strings.Contains(testKey, "{") {
		t.Fatalf("test key %q has no hash tag", testKey)
	}
	f := newFleet(t, []redis.Scripter{cc, cc}, Config{Key: testKey})
	rctx, cancel := context.WithTimeout(ctx, 1200*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range f.limiters {
		for range 4 {
			f.run(t, rctx, &wg, l, Interactive)
		}
	}
	wg.Wait()
	assertPaced(t, f.grants, 20)
	if n, err := cc.HLen(ctx, testKey).Result(); err != nil || n == 0 {
		t.Errorf("HLEN %s = %d, %v", testKey, n, err)
	}
}
