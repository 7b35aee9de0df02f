package ratelimit

import (
	"cmp"
	"container/heap"
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
)

// mustClaim claims the provisional slot held under token once.
func mustClaim(t *testing.T, l *Limiter, token string) reply {
	t.Helper()
	r, err := l.claim(context.Background(), token)
	if err != nil {
		t.Fatalf("claim %s: %v", token, err)
	}
	return r
}

func TestPreempt(t *testing.T) {
	held := keys.LimiterHeld(testKey)

	t.Run("interactive takes an unclaimed batch slot", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		now := b.now().UnixMicro()
		mustReserve(t, l, Interactive) // slot now; the next free slot is one interval away
		b.advance(coldInterval / 2)
		batch := mustReserve(t, l, Batch)
		s := now + µs(coldInterval)
		if !batch.ok || batch.kind != provisional || batch.slot != s || batch.token == "" {
			t.Fatalf("batch reservation half an interval before its slot: %+v, want provisional slot %d", batch, s)
		}
		if got := b.mr.Exists(held); !got {
			t.Fatalf("no provisional slot kept in %s", held)
		}
		in := mustReserve(t, l, Interactive)
		if !in.ok || in.kind != preempting || in.slot != s {
			t.Fatalf("interactive: %+v, want the batch slot %d", in, s)
		}
		// The batch holder was moved to the next free slot; it is not due yet.
		c := mustClaim(t, l, batch.token)
		if c.ok || c.lost || c.slot != s+µs(coldInterval) {
			t.Fatalf("claim of the taken slot: %+v, want not yet, moved to %d", c, s+µs(coldInterval))
		}
		if r := mustReserve(t, l, Batch); r.ok {
			t.Fatalf("a later batch reservation went ahead of the moved holder: %+v", r)
		}
		b.advance(time.Duration(c.slot-c.now)*time.Microsecond - time.Millisecond)
		c = mustClaim(t, l, batch.token)
		if !c.ok || c.slot != s+µs(coldInterval) || c.wait != time.Millisecond {
			t.Fatalf("claim 1ms before the moved slot: %+v, want confirmed", c)
		}
		// Confirmed: an interactive reservation now gets the slot after it.
		if in := mustReserve(t, l, Interactive); in.kind != confirmed || in.slot != c.slot+µs(coldInterval) {
			t.Fatalf("interactive after the claim: %+v, want the next free slot", in)
		}
		if b.mr.Exists(held) {
			if m, _ := b.mr.ZMembers(held); len(m) != 0 {
				t.Errorf("claimed slot still provisional: %v", m)
			}
		}
		sec := time.UnixMicro(s).Unix()
		u, err := ReadUsage(context.Background(), b.rdb, testKey, 3)
		if err != nil {
			t.Fatal(err)
		}
		var ni, nb int64
		for _, x := range u {
			ni, nb = ni+x.Interactive, nb+x.Batch
		}
		if ni != 3 || nb != 1 {
			t.Errorf("usage around second %d: %d interactive, %d batch; want 3 and 1", sec, ni, nb)
		}
	})

	t.Run("a batch slot due within the claim lead is confirmed at once", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		if r := mustReserve(t, l, Batch); !r.ok || r.kind != confirmed || r.wait != 0 {
			t.Fatalf("batch slot due now: %+v, want confirmed", r)
		}
		if b.mr.Exists(held) {
			t.Errorf("a confirmed slot was kept as provisional")
		}
	})

	t.Run("the claim of an unknown token is lost", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		if c := mustClaim(t, l, "nobody"); !c.lost {
			t.Fatalf("claim of an unknown token: %+v, want lost", c)
		}
	})

	t.Run("a clock step back forgets provisional slots", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		b.advance(time.Minute)
		mustReserve(t, l, Interactive)
		b.advance(coldInterval / 2)
		batch := mustReserve(t, l, Batch)
		if batch.kind != provisional {
			t.Fatalf("batch: %+v, want provisional", batch)
		}
		b.advance(-time.Minute)
		if c := mustClaim(t, l, batch.token); !c.lost {
			t.Fatalf("claim after a 1 minute step back: %+v, want lost", c)
		}
	})

	t.Run("moved holders keep their order", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		now := b.now().UnixMicro()
		iv := µs(coldInterval)
		mustReserve(t, l, Interactive)
		b.advance(coldInterval / 2)
		first := mustReserve(t, l, Batch)
		// A second holder booked after the first (as when the interval grew between
		// the two bookings): its slot is the next one.
		if err := b.rdb.ZAdd(context.Background(), held, redis.Z{Score: float64(now + 2*iv), Member: "second"}).Err(); err != nil {
			t.Fatal(err)
		}
		b.mr.HSet(testKey, "tat", itoa(now+3*iv))
		in := mustReserve(t, l, Interactive)
		if in.slot != first.slot || in.kind != preempting {
			t.Fatalf("interactive: %+v, want the first holder's slot %d", in, first.slot)
		}
		for token, want := range map[string]int64{first.token: now + 2*iv, "second": now + 3*iv} {
			if got := b.rdb.ZScore(context.Background(), held, token).Val(); int64(got) != want {
				t.Errorf("holder %s at %d, want %d", token, int64(got), want)
			}
		}
		if tat := b.mr.HGet(testKey, "tat"); tat != itoa(now+4*iv) {
			t.Errorf("tat %s, want %d", tat, now+4*iv)
		}
	})

	t.Run("read state names the slot the lane would get", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		mustReserve(t, l, Interactive)
		b.advance(coldInterval / 2)
		batch := mustReserve(t, l, Batch)
		ctx := context.Background()
		in, err := l.call(ctx, "s", Interactive, 0)
		if err != nil || in.slot != batch.slot {
			t.Errorf("state for interactive: slot %d, %v; want the provisional batch slot %d", in.slot, err, batch.slot)
		}
		bt, err := l.call(ctx, "s", Batch, 0)
		if err != nil || bt.slot != batch.slot+µs(coldInterval) {
			t.Errorf("state for batch: slot %d, %v; want the next free slot", bt.slot, err)
		}
	})
}

// simEvent is one step of the simulation below, at µs of the fake Redis clock.
type simEvent struct {
	at    int64
	seq   int // tie breaker: events at one instant run in the order they were scheduled
	do    func()
	index int
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(q[i].at, q[j].at), cmp.Compare(q[i].seq, q[j].seq)) < 0
}
func (q simQueue) Swap(i, j int)         { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)           { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() (x any)         { x, *q = (*q)[len(*q)-1], (*q)[:len(*q)-1]; return x }
func (q *simQueue) schedule(e *simEvent) { heap.Push(q, e) }

// use is one slot a caller of the simulation went on to call the upstream with.
type use struct {
	slot   int64
	lane   Lane
	booked int // batch: the order of the booking that led to it
}

// TestPreemptInvariants drives processes of batch pollers and holders and interactive
// arrivals against one limiter on a fake Redis clock, in random orders, and checks what
// preemption must keep: slots used are one interval apart and never more than the rate
// in any sliding second, no slot is used twice, batch holders are served in the order
// they booked (a preempted one before every later booking), and an interactive request
// waits at most one interval (plus the claim window) beyond the interactive slots
// already booked ahead of it.
func TestPreemptInvariants(t *testing.T) {
	for seed := range uint64(4) {
		t.Run("seed "+itoa(int64(seed)), func(t *testing.T) {
			b := setup(t)
			rng := rand.New(rand.NewPCG(seed, 15))
			procs := make([]*Limiter, 3)
			for i := range procs {
				procs[i] = mustNew(t, b.rdb, Config{})
			}
			iv := µs(coldInterval)
			start := t0.UnixMicro()
			end := start + 20_000_000 // 20 simulated seconds
			window := µs(coldInterval / 4)

			var (
				q       simQueue
				seq     int
				now     = start
				uses    []use
				booked  int
				waits   []int64
				alone   []int64 // waits with no interactive slot booked ahead
				claims  int
				lateOK  int
				dropped int
			)
			at := func(t int64, do func()) {
				seq++
				q.schedule(&simEvent{at: max(t, now), seq: seq, do: do})
			}
			pendingInteractive := func() int64 {
				var n int64
				for _, u := range uses {
					if u.lane == Interactive && u.slot >= now {
						n++
					}
				}
				return n
			}

			var interactive func(l *Limiter)
			interactive = func(l *Limiter) {
				ahead := pendingInteractive()
				r := mustReserve(t, l, Interactive)
				if !r.ok {
					at(now+µs(r.wait), func() { interactive(l) })
					return
				}
				wait := r.slot - r.now
				if wait < 0 || wait > (ahead+1)*iv+window {
					t.Errorf("interactive slot %dµs ahead with %d interactive slots ahead of it, more than %d",
						wait, ahead, (ahead+1)*iv+window)
				}
				waits = append(waits, wait)
				if ahead == 0 {
					alone = append(alone, wait)
				}
				uses = append(uses, use{slot: r.slot, lane: Interactive})
			}

			var poll func(l *Limiter)
			var hold func(l *Limiter, token string, n int)
			poll = func(l *Limiter) {
				r := mustReserve(t, l, Batch)
				if !r.ok {
					at(now+µs(r.wait)+rng.Int64N(iv/8), func() { poll(l) })
					return
				}
				booked++
				n := booked
				switch {
				case r.kind == confirmed:
					uses = append(uses, use{slot: r.slot, lane: Batch, booked: n})
				case rng.IntN(40) == 0:
					// The holder goes away: its slot stays for an interactive request.
					dropped++
				default:
					at(r.slot-1000-rng.Int64N(1500), func() { hold(l, r.token, n) })
				}
				at(now+rng.Int64N(1000), func() { poll(l) }) // the next waiter of the process
			}
			hold = func(l *Limiter, token string, n int) {
				claims++
				if rng.IntN(30) == 0 {
					// Woken late: the claim comes after the slot.
					lateOK++
					now += rng.Int64N(4000)
					b.mr.SetTime(time.UnixMicro(now))
				}
				c := mustClaim(t, l, token)
				switch {
				case c.lost:
					t.Errorf("provisional slot of holder %d lost", n)
				case c.ok:
					uses = append(uses, use{slot: c.slot, lane: Batch, booked: n})
				default:
					at(c.slot-1000-rng.Int64N(1500), func() { hold(l, token, n) })
				}
			}

			for _, l := range procs {
				at(start+rng.Int64N(iv), func() { poll(l) })
			}
			for t := start; t < end; t += rng.Int64N(400_000) {
				burst := 1
				if rng.IntN(10) == 0 {
					burst = 3
				}
				l := procs[rng.IntN(len(procs))]
				for range burst {
					at(t, func() { interactive(l) })
				}
			}
			for q.Len() > 0 {
				e := heap.Pop(&q).(*simEvent)
				if e.at > end {
					break
				}
				if e.at > now {
					now = e.at
					b.mr.SetTime(time.UnixMicro(now))
				}
				e.do()
				if t.Failed() {
					return
				}
			}

			// No slot used twice, consecutive slots one interval apart, at most the
			// rate in any sliding second.
			slices.SortFunc(uses, func(a, b use) int { return cmp.Compare(a.slot, b.slot) })
			most := 0
			for i, j := 0, 0; i < len(uses); i++ {
				if i > 0 && uses[i].slot-uses[i-1].slot < iv {
					t.Errorf("slots %d (%s) and %d (%s) are %dµs apart, less than the interval",
						uses[i-1].slot, uses[i-1].lane, uses[i].slot, uses[i].lane, uses[i].slot-uses[i-1].slot)
				}
				for j < len(uses) && uses[j].slot-uses[i].slot < 1_000_000 {
					j++
				}
				most = max(most, j-i)
			}
			if most > 20 {
				t.Errorf("%d slots used within one second", most)
			}
			// Batch holders are served in the order they booked.
			var batch []use
			for _, u := range uses {
				if u.lane == Batch {
					batch = append(batch, u)
				}
			}
			slices.SortFunc(batch, func(a, b use) int { return cmp.Compare(a.booked, b.booked) })
			for i := 1; i < len(batch); i++ {
				if batch[i].slot <= batch[i-1].slot {
					t.Errorf("batch booking %d served at %d, not after booking %d at %d",
						batch[i].booked, batch[i].slot, batch[i-1].booked, batch[i-1].slot)
				}
			}
			var preempted uint64
			for _, l := range procs {
				preempted += l.Stats().Interactive.Preempted
			}
			slices.Sort(alone)
			t.Logf("%d slots used (%d batch), %d claims (%d late), %d holders gone, %d interactive (%d took a batch slot); with none booked ahead (%d): wait p50 %dµs p95 %dµs max %dµs",
				len(uses), len(batch), claims, lateOK, dropped, len(waits), preempted,
				len(alone), alone[len(alone)/2], alone[len(alone)*95/100], alone[len(alone)-1])
			if preempted == 0 {
				t.Error("no interactive reservation took a batch slot: the test checked nothing")
			}
			// The rate is used: gaps only where a holder went away or an interactive
			// request took nothing (none of them is lost: every slot is used once).
			if span := float64(uses[len(uses)-1].slot-uses[0].slot) / 1e6; float64(len(uses)-1)/span < 18 {
				t.Errorf("%d slots over %.1fs: the backlog did not keep the rate busy", len(uses), span)
			}
		})
	}
}

// TestRealBatchWaitPreempted runs a batch Wait on a real Redis whose provisional slot an
// interactive reservation takes: the Wait returns the later slot its waiter was given.
func TestRealBatchWaitPreempted(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	// 2 calls/s: the provisional slot is booked about 0.4s before it is due.
	l := mustNew(t, rdb, Config{Key: testKey, Rate: 2})
	mustReserve(t, l, Interactive) // the next free slot is one interval away
	type result struct {
		res Reservation
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := l.Wait(ctx, Batch)
		done <- result{res, err}
	}()
	held := keys.LimiterHeld(testKey)
	waittest.Until(t, waittest.DefaultTimeout, "the batch waiter to hold a provisional slot", func() bool {
		n, err := rdb.ZCard(ctx, held).Result()
		return err == nil && n == 1
	})
	taken := mustReserve(t, l, Interactive)
	if taken.kind != preempting {
		t.Fatalf("interactive reservation: %+v, want the batch slot", taken)
	}
	got := waittest.Recv(t, waittest.DefaultTimeout, "the batch Wait", done)
	if got.err != nil {
		t.Fatalf("batch Wait: %v", got.err)
	}
	if want := taken.slot + µs(taken.interval); got.res.Slot.UnixMicro() != want {
		t.Errorf("batch slot %d, want %d (one interval after the slot taken)", got.res.Slot.UnixMicro(), want)
	}
	if late := time.Since(got.res.Start); late < 0 {
		t.Errorf("Wait returned %v before its slot", -late)
	}
	st := l.Stats()
	if st.Batch.Preempted != 1 || st.Interactive.Preempted != 1 || st.Batch.Grants != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestClaimLead(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{}) // unused
	t.Cleanup(func() { _ = rdb.Close() })
	l := mustNew(t, rdb, Config{Key: "k"})
	if got := l.claimLead(); got != 2*time.Millisecond {
		t.Fatalf("lead before any call = %v, want ClaimLead 2ms", got)
	}
	l.rtt.Store(int64(500 * time.Microsecond))
	if got := l.claimLead(); got != 2500*time.Microsecond {
		t.Errorf("lead with a 0.5ms round trip = %v, want 2.5ms", got)
	}
	l.noteClaim(4 * time.Millisecond) // one claim answered 4ms after it was due
	if got := l.claimLead(); got != 6*time.Millisecond {
		t.Errorf("lead after a 4ms claim = %v, want 6ms", got)
	}
	for range 100 {
		l.noteClaim(100 * time.Microsecond)
	}
	if got := l.claimLead(); got < 2500*time.Microsecond || got > 2600*time.Microsecond {
		t.Errorf("lead after 100 quick claims = %v, want about 2.5ms (the peak decayed)", got)
	}
	l.noteClaim(time.Second)
	if got := l.claimLead(); got != coldInterval/4 {
		t.Errorf("lead after a 1s claim = %v, want capped at a quarter interval %v", got, coldInterval/4)
	}
}
