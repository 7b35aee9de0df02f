package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/waittest"
)

// The Redis client types the limiter must accept.
var (
	_ redis.Scripter = (*redis.Client)(nil)
	_ redis.Scripter = (*redis.ClusterClient)(nil)
	_ redis.Scripter = (*redis.Ring)(nil)
	_ redis.Scripter = (redis.UniversalClient)(nil)
)

var testKey = keys.Limiter("AKIDtest", "ApplyWebVerificationBizTokenIntl", "faceid.intl.tencentcloudapi.com")

// t0 is the frozen miniredis clock of the unit tests.
var t0 = time.Unix(1_750_000_000, 123_456_000)

type testBundle struct {
	mr  *miniredis.Miniredis
	rdb *redis.Client
}

// setup starts a miniredis whose clock is frozen at t0 (advance it with bundle.advance).
func setup(t *testing.T) *testBundle {
	t.Helper()
	mr := redistest.Mini(t)
	mr.SetTime(t0)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return &testBundle{mr: mr, rdb: rdb}
}

func (b *testBundle) advance(d time.Duration) { b.mr.SetTime(b.now().Add(d)) }

func (b *testBundle) now() time.Time {
	v, err := b.rdb.Time(context.Background()).Result()
	if err != nil {
		panic(err)
	}
	return v
}

// mustNew returns a Limiter on rdb with cfg, Key defaulting to testKey.
func mustNew(t *testing.T, rdb redis.Scripter, cfg Config) *Limiter {
	t.Helper()
	if cfg.Key == "" {
		cfg.Key = testKey
	}
	l, err := New(rdb, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// mustReserve makes one reservation without waiting.
func mustReserve(t *testing.T, l *Limiter, lane Lane) reply {
	t.Helper()
	r, err := l.reserve(context.Background(), lane)
	if err != nil {
		t.Fatalf("reserve %s: %v", lane, err)
	}
	return r
}

// observe feeds n copies of each delay into l's window.
func observe(l *Limiter, n int, delays ...time.Duration) {
	for range n {
		for _, d := range delays {
			l.obs.add(d)
		}
	}
}

func µs(d time.Duration) int64 { return d.Microseconds() }

// coldInterval is the default interval before any observation: (1s + 50ms) / 20.
const coldInterval = 52500 * time.Microsecond

func TestConfig(t *testing.T) {
	// An unused client; closed, as every client starts a background goroutine.
	rdb := redis.NewClient(&redis.Options{})
	t.Cleanup(func() { _ = rdb.Close() })
	t.Run("defaults", func(t *testing.T) {
		l := mustNew(t, rdb, Config{Key: "k"})
		want := Config{Key: "k", Rate: 20, MaxAhead: 2 * time.Second, BatchAhead: 0.75, ClaimLead: 2 * time.Millisecond, Window: 200,
			InitialSpread: 50 * time.Millisecond, MinSpread: 5 * time.Millisecond,
			MaxSpread: 250 * time.Millisecond, Decrease: 0.7, MinFactor: 0.2, Recovery: 0.05}
		if l.cfg != want {
			t.Errorf("got %+v, want %+v", l.cfg, want)
		}
		if got := l.Interval(); got != coldInterval {
			t.Errorf("Interval before any reservation = %v, want %v", got, coldInterval)
		}
	})
	bad := []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{}},
		{"negative rate", Config{Key: "k", Rate: -1}},
		{"max ahead too far", Config{Key: "k", MaxAhead: time.Minute}},
		{"negative max ahead", Config{Key: "k", MaxAhead: -time.Second}},
		{"window of one", Config{Key: "k", Window: 1}},
		{"claim lead too long", Config{Key: "k", ClaimLead: time.Second}},
		{"min above max spread", Config{Key: "k", MinSpread: time.Second, MaxSpread: time.Millisecond}},
		{"decrease of one", Config{Key: "k", Decrease: 1}},
		{"min factor above one", Config{Key: "k", MinFactor: 1.5}},
		{"negative recovery", Config{Key: "k", Recovery: -0.1}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(rdb, tt.cfg)
			if !errors.Is(err, ErrConfig) {
				t.Errorf("New(%+v) = %v, want ErrConfig", tt.cfg, err)
			}
		})
	}
	t.Run("nil client", func(t *testing.T) {
		if _, err := New(nil, Config{Key: "k"}); !errors.Is(err, ErrConfig) {
			t.Errorf("got %v, want ErrConfig", err)
		}
	})
}

func TestLaneString(t *testing.T) {
	for lane, want := range map[Lane]string{Interactive: "interactive", Batch: "batch", Lane(7): "Lane(7)"} {
		if got := lane.String(); got != want {
			t.Errorf("Lane(%d).String() = %q, want %q", int(lane), got, want)
		}
	}
}

func TestReserve(t *testing.T) {
	ctx := context.Background()

	t.Run("grants are spaced by one interval", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		now := b.now().UnixMicro()
		for i := range 5 {
			r := mustReserve(t, l, Interactive)
			if !r.ok || r.now != now || r.interval != coldInterval {
				t.Fatalf("grant %d: %+v", i, r)
			}
			if want := now + int64(i)*µs(coldInterval); r.slot != want || r.wait != time.Duration(r.slot-now)*time.Microsecond {
				t.Fatalf("grant %d: slot %d wait %v, want slot %d", i, r.slot, r.wait, want)
			}
		}
		// Full µs precision survives the hash (Lua's default formatting would keep 14 digits).
		tat, err := b.rdb.HGet(ctx, testKey, "tat").Result()
		if want := strconv.FormatInt(now+5*µs(coldInterval), 10); err != nil || tat != want {
			t.Errorf("tat = %q, %v; want %q", tat, err, want)
		}
		if ttl := b.mr.TTL(testKey); ttl != keyTTL {
			t.Errorf("TTL = %v, want %v", ttl, keyTTL)
		}
	})

	t.Run("interactive is refused beyond MaxAhead without reserving", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{MaxAhead: time.Second})
		granted := 0
		var last reply
		for {
			last = mustReserve(t, l, Interactive)
			if !last.ok {
				break
			}
			granted++
		}
		if want := int(time.Second/coldInterval) + 1; granted != want {
			t.Errorf("granted %d slots within 1s ahead, want %d", granted, want)
		}
		ahead := time.Duration(last.slot-last.now) * time.Microsecond
		if last.wait != ahead-time.Second {
			t.Errorf("refusal says wait %v, want %v (until the slot is 1s ahead)", last.wait, ahead-time.Second)
		}
		if again := mustReserve(t, l, Interactive); again.ok || again.slot != last.slot {
			t.Errorf("a refusal moved the next slot: %d then %d", last.slot, again.slot)
		}
		b.advance(last.wait)
		if r := mustReserve(t, l, Interactive); !r.ok || r.slot != last.slot {
			t.Errorf("after waiting as told: %+v, want the slot %d", r, last.slot)
		}
		if got := l.Stats().Interactive.Refusals; got != 2 {
			t.Errorf("Stats refusals = %d, want 2", got)
		}
	})

	t.Run("batch only takes a slot that is due", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		first := mustReserve(t, l, Batch)
		if !first.ok || first.wait != 0 {
			t.Fatalf("first batch reservation: %+v", first)
		}
		slack := coldInterval * 3 / 4
		second := mustReserve(t, l, Batch)
		if second.ok || second.wait != coldInterval-slack {
			t.Fatalf("second batch reservation: %+v, want refused with wait %v", second, coldInterval-slack)
		}
		b.advance(second.wait)
		third := mustReserve(t, l, Batch)
		if !third.ok || third.wait != slack || third.slot != first.slot+µs(coldInterval) {
			t.Fatalf("batch reservation once due: %+v", third)
		}
	})

	t.Run("interactive goes ahead of batch waiters", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		batch := mustReserve(t, l, Batch)
		for range 10 { // a crowd of batch waiters, all refused
			if r := mustReserve(t, l, Batch); r.ok {
				t.Fatalf("batch waiter got a future slot: %+v", r)
			}
		}
		in := mustReserve(t, l, Interactive)
		if !in.ok || in.slot != batch.slot+µs(coldInterval) {
			t.Fatalf("interactive: %+v, want the slot right after the batch grant", in)
		}
		if r := mustReserve(t, l, Batch); r.ok || r.slot != in.slot+µs(coldInterval) {
			t.Fatalf("batch after interactive: %+v, want refused until after the interactive slot", r)
		}
	})

	t.Run("spread is the union of every process's observations", func(t *testing.T) {
		b := setup(t)
		near := mustNew(t, b.rdb, Config{})
		far := mustNew(t, b.rdb, Config{})
		observe(near, 5, 10*time.Millisecond, 11*time.Millisecond)
		if r := mustReserve(t, near, Batch); r.spread != 5*time.Millisecond || r.interval != 50250*time.Microsecond {
			t.Fatalf("near alone: spread %v interval %v, want the 5ms floor, 50.25ms", r.spread, r.interval)
		}
		observe(far, 5, 30*time.Millisecond, 32*time.Millisecond)
		if r := mustReserve(t, far, Batch); r.spread != 22*time.Millisecond || r.interval != 51100*time.Microsecond {
			t.Fatalf("near and far: spread %v interval %v, want 22ms, 51.1ms", r.spread, r.interval)
		}
		if got := near.Interval(); got != 50250*time.Microsecond {
			t.Errorf("near's Interval before its next call = %v", got)
		}
		mustReserve(t, near, Batch)
		if got := near.Interval(); got != 51100*time.Microsecond {
			t.Errorf("near's Interval after its next call = %v, want the shared 51.1ms", got)
		}
		// Ranges older than two epochs are forgotten: back to the cold-start spread.
		b.advance(2*spreadEpoch + time.Second)
		fresh := mustNew(t, b.rdb, Config{})
		if r := mustReserve(t, fresh, Batch); r.spread != 50*time.Millisecond {
			t.Errorf("after two epochs: spread %v, want the initial 50ms", r.spread)
		}
	})

	t.Run("spread needs enough samples and is bounded", func(t *testing.T) {
		tests := []struct {
			name   string
			delays []time.Duration
			n      int
			want   time.Duration
		}{
			{"too few samples", []time.Duration{time.Millisecond, 400 * time.Millisecond}, 4, 50 * time.Millisecond},
			{"steady", []time.Duration{20 * time.Millisecond, 27 * time.Millisecond}, 5, 7 * time.Millisecond},
			{"floor", []time.Duration{20 * time.Millisecond, 23 * time.Millisecond}, 5, 5 * time.Millisecond},
			{"cap", []time.Duration{time.Millisecond, 3 * time.Second}, 5, 250 * time.Millisecond},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := setup(t)
				l := mustNew(t, b.rdb, Config{})
				observe(l, tt.n, tt.delays...)
				if r := mustReserve(t, l, Batch); r.spread != tt.want {
					t.Errorf("spread %v, want %v", r.spread, tt.want)
				}
			})
		}
	})

	t.Run("window forgets old observations", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{Window: 20})
		observe(l, 1, 200*time.Millisecond)
		observe(l, 20, 5*time.Millisecond, 6*time.Millisecond)
		if lo, hi, ok := l.obs.bounds(); !ok || lo != 5*time.Millisecond || hi != 6*time.Millisecond {
			t.Errorf("bounds = %v, %v, %v; want 5ms, 6ms", lo, hi, ok)
		}
	})

	t.Run("a clock step back is detected", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		b.advance(time.Minute)
		mustReserve(t, l, Interactive)
		b.advance(-time.Minute)
		r := mustReserve(t, l, Interactive)
		if !r.ok || r.slot != r.now+µs(2*time.Second) {
			t.Errorf("after a 1 minute step back: %+v, want a slot MaxAhead from now", r)
		}
	})
}

func TestPenalize(t *testing.T) {
	ctx := context.Background()

	rate := func(t *testing.T, l *Limiter) float64 {
		t.Helper()
		r, err := l.Rate(ctx)
		if err != nil {
			t.Fatalf("Rate: %v", err)
		}
		return r
	}
	near := func(got, want float64) bool { return got > want-1e-3 && got < want+1e-3 }

	t.Run("lowers the rate and pushes the next slot back", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		before := mustReserve(t, l, Interactive) // next free slot: now + interval
		if err := l.Penalize(ctx, Reservation{}); err != nil {
			t.Fatal(err)
		}
		if got := rate(t, l); !near(got, 14) {
			t.Errorf("Rate after one penalty = %v, want 14", got)
		}
		wantIv := l.Interval() // 52.5ms / 0.7 = 75ms, rounded up to the µs
		if wantIv < 75*time.Millisecond || wantIv > 75001*time.Microsecond {
			t.Errorf("Interval = %v, want 75ms", wantIv)
		}
		r := mustReserve(t, l, Interactive)
		if want := before.slot + µs(coldInterval) + µs(wantIv); r.slot != want {
			t.Errorf("next slot %d, want %d (pushed back by one new interval)", r.slot, want)
		}
		if st := l.Stats(); st.Penalties != 1 || !near(st.Factor, 0.7) {
			t.Errorf("Stats = %+v", st)
		}
	})

	t.Run("recovers with Redis time", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		if err := l.Penalize(ctx, Reservation{}); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			after time.Duration
			want  float64
		}{{2 * time.Second, 16}, {2 * time.Second, 18}, {10 * time.Second, 20}} {
			b.advance(step.after)
			if got := rate(t, l); !near(got, step.want) {
				t.Errorf("Rate = %v, want %v", got, step.want)
			}
		}
	})

	t.Run("stops at MinFactor", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		for range 10 {
			if err := l.Penalize(ctx, Reservation{}); err != nil {
				t.Fatal(err)
			}
		}
		if got := rate(t, l); !near(got, 4) {
			t.Errorf("Rate = %v, want 4 (20 × 0.2)", got)
		}
	})

	t.Run("one overrun lowers the rate once", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		burst := make([]Reservation, 5)
		for i := range burst {
			r := mustReserve(t, l, Interactive)
			burst[i] = Reservation{Lane: Interactive, Reserved: time.UnixMicro(r.now), Slot: time.UnixMicro(r.slot)}
		}
		b.advance(time.Second)
		for _, res := range burst {
			if err := l.Penalize(ctx, res); err != nil {
				t.Fatal(err)
			}
		}
		if got := rate(t, l); !near(got, 14) {
			t.Errorf("Rate after 5 refusals of one burst = %v, want 14", got)
		}
		if got := l.Stats().Penalties; got != 1 {
			t.Errorf("Stats.Penalties = %d, want 1", got)
		}
		// A call paced after the penalty that is refused again lowers it further.
		b.advance(time.Millisecond)
		r := mustReserve(t, l, Interactive)
		if err := l.Penalize(ctx, Reservation{Reserved: time.UnixMicro(r.now)}); err != nil {
			t.Fatal(err)
		}
		if got := rate(t, l); got >= 14 {
			t.Errorf("Rate after a refusal of a newer call = %v, want below 14", got)
		}
	})
}

func TestWaitCancel(t *testing.T) {
	t.Run("while refused", func(t *testing.T) {
		b := setup(t) // frozen clock: every retry is refused again
		l := mustNew(t, b.rdb, Config{})
		for mustReserve(t, l, Interactive).ok {
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := l.Wait(ctx, Interactive); errc <- err }()
		waittest.Until(t, waittest.DefaultTimeout, "a retry", func() bool { return l.Stats().Interactive.Refusals >= 3 })
		cancel()
		if err := waittest.Recv(t, waittest.DefaultTimeout, "canceled Wait", errc); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if got := l.Stats().Interactive.Canceled; got != 1 {
			t.Errorf("Stats canceled = %d, want 1", got)
		}
	})

	t.Run("while sleeping until a granted slot", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		for range 30 { // the next free slot is 30 intervals (1.575s) away
			mustReserve(t, l, Interactive)
		}
		tat := func() string { return b.mr.HGet(testKey, "tat") }
		before := tat()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := l.Wait(ctx, Interactive); errc <- err }()
		waittest.Until(t, waittest.DefaultTimeout, "the grant", func() bool { return tat() != before })
		cancel()
		if err := waittest.Recv(t, waittest.DefaultTimeout, "canceled Wait", errc); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if st := l.Stats().Interactive; st.Grants != 0 || st.Canceled != 1 {
			t.Errorf("Stats = %+v, want the canceled grant counted as canceled", st)
		}
	})

	t.Run("while queued behind a waiter of the same process", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		mustReserve(t, l, Batch) // the next batch slot is not due on a frozen clock
		firstCtx, cancelFirst := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { _, err := l.Wait(firstCtx, Batch); first <- err }()
		waittest.Until(t, waittest.DefaultTimeout, "the first waiter polling", func() bool { return l.Stats().Batch.Refusals >= 2 })

		ctx, cancel := context.WithCancel(context.Background())
		second := make(chan error, 1)
		go func() { _, err := l.Wait(ctx, Batch); second <- err }()
		refusals := l.Stats().Batch.Refusals
		waittest.Until(t, waittest.DefaultTimeout, "more polls by the first waiter", func() bool { return l.Stats().Batch.Refusals >= refusals+2 })
		cancel()
		if err := waittest.Recv(t, waittest.DefaultTimeout, "queued Wait", second); !errors.Is(err, context.Canceled) {
			t.Fatalf("queued Wait = %v, want context.Canceled", err)
		}
		cancelFirst()
		if err := waittest.Recv(t, waittest.DefaultTimeout, "polling Wait", first); !errors.Is(err, context.Canceled) {
			t.Fatalf("polling Wait = %v, want context.Canceled", err)
		}

		// Both gave their turn back: once the slot is due, a new waiter gets it at once.
		b.advance(time.Second)
		errc := make(chan error, 1)
		go func() { _, err := l.Wait(context.Background(), Batch); errc <- err }()
		if err := waittest.Recv(t, waittest.DefaultTimeout, "Wait after cancellations", errc); err != nil {
			t.Fatalf("Wait = %v", err)
		}
	})

	t.Run("already canceled", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Wait(ctx, Batch); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait = %v, want context.Canceled", err)
		}
	})

	t.Run("unknown lane", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		if _, err := l.Wait(context.Background(), Lane(5)); err == nil {
			t.Error("Wait in lane 5 succeeded")
		}
	})
}

func TestObserve(t *testing.T) {
	b := setup(t)
	l := mustNew(t, b.rdb, Config{})
	l.Observe(Reservation{}, time.Now()) // ignored
	if _, _, ok := l.obs.bounds(); ok {
		t.Fatal("a zero Reservation was observed")
	}
	sent := time.Now()
	res := Reservation{Start: sent.Add(30 * time.Millisecond)}
	for i := range minSamples {
		l.Observe(res, res.Start.Add(time.Duration(20+i)*time.Millisecond))
	}
	l.Observe(res, sent) // before the slot: ignored
	lo, hi, ok := l.obs.bounds()
	if !ok || lo != 20*time.Millisecond || hi != time.Duration(20+minSamples-1)*time.Millisecond {
		t.Errorf("bounds = %v, %v, %v", lo, hi, ok)
	}
}

func TestWaitBefore(t *testing.T) {
	b := setup(t)
	l := mustNew(t, b.rdb, Config{})
	ctx := context.Background()
	if _, err := l.WaitBefore(ctx, Batch, time.Now().Add(time.Second)); err != nil {
		t.Fatalf("first batch wait: %v", err)
	}
	// Redis's clock is frozen: the next batch slot never falls due, so a caller with a
	// deadline gives up with ErrNoSlot instead of waiting forever, reserving nothing.
	before := b.rdb.HGet(ctx, testKey, "tat").Val()
	_, err := l.WaitBefore(ctx, Batch, time.Now().Add(20*time.Millisecond))
	if !errors.Is(err, ErrNoSlot) {
		t.Fatalf("WaitBefore past its deadline = %v, want ErrNoSlot", err)
	}
	if after := b.rdb.HGet(ctx, testKey, "tat").Val(); after != before {
		t.Fatalf("a give-up reserved a slot: tat %s → %s", before, after)
	}
}

func TestLateLimit(t *testing.T) {
	for _, tt := range []struct{ spread, want time.Duration }{
		{0, 2 * time.Millisecond},
		{time.Millisecond, 2 * time.Millisecond},
		{10 * time.Millisecond, 5 * time.Millisecond},
		{40 * time.Millisecond, 20 * time.Millisecond},
	} {
		if got := lateLimit(tt.spread); got != tt.want {
			t.Errorf("lateLimit(%v) = %v, want %v", tt.spread, got, tt.want)
		}
	}
}
