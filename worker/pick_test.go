package worker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/results"
	"github.com/faceidq/faceidq/tasks"
)

// nextLimiter is a freeLimiter whose next free slot is set by the test, counting reads.
type nextLimiter struct {
	freeLimiter
	next  time.Duration
	err   error
	reads atomic.Int32
}

func (l *nextLimiter) NextFree(context.Context) (time.Duration, error) {
	l.reads.Add(1)
	return l.next, l.err
}

// poolOf returns a worker whose sets are accounts[i] serving regions[i], each with
// one nextLimiter for every action.
func poolOf(t *testing.T, accounts []string, regions [][]string) (*Worker, []*nextLimiter) {
	t.Helper()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	var sets []Budget
	var lims []*nextLimiter
	for i, a := range accounts {
		l := &nextLimiter{}
		lims = append(lims, l)
		sets = append(sets, Budget{Account: a, Masked: "AKID…" + a, Regions: regions[i], Upstream: &fakeUpstream{},
			Limiters: func(string) (Limiter, error) { return l, nil }})
	}
	w, err := New(Config{Redis: rdb, Budgets: sets})
	if err != nil {
		t.Fatal(err)
	}
	return w, lims
}

func TestPick(t *testing.T) {
	ctx := context.Background()
	all := [][]string{nil, nil, nil}

	t.Run("one set reads nothing", func(t *testing.T) {
		w, lims := poolOf(t, []string{"a"}, [][]string{nil})
		lims[0].next = time.Hour
		for _, r := range []route{{region: "ap-jakarta"}, {region: "", account: "a"}} {
			if b, err := w.pick(ctx, faceid.Action, r); err != nil || b.Account != "a" {
				t.Fatalf("pick(%+v) = %v, %v", r, b, err)
			}
		}
		if n := lims[0].reads.Load(); n != 0 {
			t.Fatalf("%d reads of the only limiter, want none", n)
		}
	})
	t.Run("soonest slot", func(t *testing.T) {
		w, lims := poolOf(t, []string{"a", "b", "c"}, all)
		lims[0].next, lims[1].next, lims[2].next = 300*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond
		for range 5 {
			if b, _ := w.pick(ctx, faceid.Action, route{region: "ap-singapore"}); b.Account != "b" {
				t.Fatalf("picked %s, want b (the soonest slot)", b.Account)
			}
		}
	})
	t.Run("ties go round", func(t *testing.T) {
		w, _ := poolOf(t, []string{"a", "b"}, [][]string{nil, nil})
		got := map[string]int{}
		for range 10 {
			b, _ := w.pick(ctx, faceid.Action, route{})
			got[b.Account]++
		}
		if got["a"] != 5 || got["b"] != 5 {
			t.Fatalf("free sets picked %v, want each half the time", got)
		}
	})
	t.Run("unreadable limiter counts as latest", func(t *testing.T) {
		w, lims := poolOf(t, []string{"a", "b"}, [][]string{nil, nil})
		lims[0].err, lims[1].next = errors.New("redis down"), time.Second
		for range 4 {
			if b, _ := w.pick(ctx, faceid.Action, route{}); b.Account != "b" {
				t.Fatalf("picked %s, want b", b.Account)
			}
		}
	})
	t.Run("region", func(t *testing.T) {
		w, lims := poolOf(t, []string{"a", "b"}, [][]string{{"ap-jakarta"}, {"ap-singapore", "ap-bangkok"}})
		lims[1].next = time.Hour
		for region, want := range map[string]string{"ap-jakarta": "a", "ap-bangkok": "b", "": "b"} {
			if b, err := w.pick(ctx, faceid.Action, route{region: region}); err != nil || b.Account != want {
				t.Fatalf("region %q: picked %v, %v; want %s", region, b, err, want)
			}
		}
		if _, err := w.pick(ctx, faceid.Action, route{region: "sa-saopaulo"}); !errors.Is(err, ErrNoBudget) {
			t.Fatalf("a region no set serves: %v, want ErrNoBudget", err)
		}
	})
	t.Run("minting account", func(t *testing.T) {
		w, lims := poolOf(t, []string{"a", "b"}, all[:2])
		lims[1].next = time.Hour
		if b, err := w.pick(ctx, faceid.ActionGet, route{region: "ap-singapore", account: "b"}); err != nil || b.Account != "b" {
			t.Fatalf("picked %v, %v; want b, the minting account, however busy", b, err)
		}
		if _, err := w.pick(ctx, faceid.ActionGet, route{account: "gone"}); !errors.Is(err, ErrNoBudget) {
			t.Fatalf("an account no longer configured: %v, want ErrNoBudget", err)
		}
	})
}

// TestFetchWithAccountGone: a result minted by a set no longer configured fails its
// fetch with CodeNoBudget, without calling the upstream.
func TestFetchWithAccountGone(t *testing.T) {
	ctx := context.Background()
	w, _ := poolOf(t, []string{"a", "b"}, [][]string{nil, nil})
	id := tasks.NewJobID()
	if err := w.results.Create(ctx, results.NewRecord{JobID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.results.Finish(ctx, id, results.Final{Status: tasks.StatusSucceeded, BizToken: "tok-" + id, Account: "gone", AccountMasked: "AKID…gone"}); err != nil {
		t.Fatal(err)
	}
	script := scriptGet("tok-"+id, getAnswer{code: new(int64)})
	h := &handler[*getTask, *faceid.GetWebVerificationResultIntlResponseParams]{w: w, a: getAction{w}, m: w.cfg.Metrics.Action(faceid.ActionGet)}
	task, err := tasks.NewGetTask(&tasks.GetPayload{JobID: id, Priority: tasks.PriorityInteractive, Trigger: tasks.TriggerNow}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, task); err == nil {
		t.Fatal("the fetch succeeded")
	}
	f, err := w.results.Fields(ctx, id, tasks.FieldVerificationFetchError, tasks.FieldVerificationFetchMessage, tasks.FieldAccount)
	if err != nil {
		t.Fatal(err)
	}
	if f[0] != CodeNoBudget || !strings.Contains(f[1], "no longer configured") || f[2] != "AKID…gone" {
		t.Fatalf("fetch error %q %q, Account %q; want %s", f[0], f[1], f[2], CodeNoBudget)
	}
	if script.calls != 0 {
		t.Fatalf("the upstream was called %d times", script.calls)
	}
}
