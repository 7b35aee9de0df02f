package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/redis/go-redis/v9"
)

// Lane is the priority of a reservation. The zero value is Interactive.
type Lane int

// The two lanes.
const (
	// Interactive reservations (a person waiting on a page) may book slots up to
	// Config.MaxAhead in the future, ahead of every batch waiter, and take a batch
	// waiter's slot that it has not confirmed yet. They are never taken themselves.
	Interactive Lane = iota
	// Batch reservations (campaigns) only take a slot due within Config.BatchAhead
	// intervals, and hold it provisionally: an interactive reservation may take it until
	// the batch waiter confirms it, just before it is due. A waiter whose slot was taken
	// gets a later one, ahead of every batch reservation made after its own.
	Batch
)

// String returns "interactive" or "batch".
func (l Lane) String() string {
	switch l {
	case Interactive:
		return "interactive"
	case Batch:
		return "batch"
	}
	return "Lane(" + strconv.Itoa(int(l)) + ")"
}

const (
	keyTTL      = 10 * time.Minute // the hash expires after this long unused
	spreadEpoch = 10 * time.Second // shared delay ranges are forgotten after one to two epochs
)

// Reservation is one granted slot.
type Reservation struct {
	// Lane is the lane the slot was granted in.
	Lane Lane
	// Start is the moment, on this process's clock, from which the caller may call the
	// upstream: Slot mapped onto this process's clock (see clock). Wait returns at (or
	// just after) Start.
	Start time.Time
	// Slot is the slot on Redis's clock (µs precision). Slots of one key are at least
	// Interval apart, whatever process holds them.
	Slot time.Time
	// Reserved is Redis's clock when the slot was granted.
	Reserved time.Time
	// Interval is the spacing in force when the slot was granted.
	Interval time.Duration
	// Waited is how long Wait blocked, from its call until Start.
	Waited time.Duration
}

// LaneStats counts the reservations of one lane made through one Limiter.
type LaneStats struct {
	// Grants is the number of slots granted and waited for.
	Grants uint64
	// Refusals is the number of script calls answered "come back later".
	Refusals uint64
	// Canceled is the number of Waits that ended with their context done.
	Canceled uint64
	// Late is the number of granted slots dropped because this process woke up too
	// late for them (see WaitBefore).
	Late uint64
	// Preempted counts, for Interactive, the slots taken from a batch waiter and, for
	// Batch, the provisional slots found taken (the waiter then waited for a later one).
	Preempted uint64
	// Wait is the total time granted Waits blocked.
	Wait time.Duration
}

// Stats is a snapshot of a Limiter's counters, for metrics.
type Stats struct {
	Interactive LaneStats
	Batch       LaneStats
	// Penalties is the number of Penalize calls that lowered the rate (ignored ones are
	// not counted).
	Penalties uint64
	// Interval, Spread and Factor are the values the script used on its latest answer.
	Interval time.Duration
	Spread   time.Duration
	Factor   float64
}

type laneCounters struct {
	grants, refusals, canceled, late, preempted atomic.Uint64
	wait                                        atomic.Int64
}

// Limiter paces calls to one upstream across every process that shares its Key.
// It is safe for concurrent use.
type Limiter struct {
	rdb   redis.Scripter
	cfg   Config
	obs   *window
	clk   *clock           // Redis's clock mapped onto this process's
	turns [2]chan struct{} // one waiter per lane polls Redis; the others queue here, FIFO

	lanes     [2]laneCounters
	penalties atomic.Uint64
	interval  atomic.Int64 // ns
	spread    atomic.Int64 // ns
	factor    atomic.Int64 // millionths
	rtt       atomic.Int64 // ns, moving average of the script's round trip
	claimPeak atomic.Int64 // ns, decaying peak of a claim's delay (see confirm)
}

// New returns a Limiter on rdb (a *redis.Client, *redis.ClusterClient, *redis.Ring or
// redis.UniversalClient). It does no I/O.
func New(rdb redis.Scripter, cfg Config) (*Limiter, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: nil Redis client", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Limiter{rdb: rdb, cfg: cfg, obs: newWindow(cfg.Window), clk: newClock()}
	for i := range l.turns {
		l.turns[i] = make(chan struct{}, 1)
	}
	l.interval.Store(int64(time.Duration(float64(time.Second+cfg.InitialSpread) / cfg.Rate)))
	l.spread.Store(int64(cfg.InitialSpread))
	l.factor.Store(1e6)
	return l, nil
}

// The kinds of a granted slot (see the script's reply).
const (
	provisional = 0 // a batch slot an interactive reservation may still take
	confirmed   = 1
	preempting  = 2 // an interactive slot taken from a batch waiter
)

// reply is one answer of the script.
type reply struct {
	ok               bool
	lost             bool // a claim whose token holds nothing
	kind             int64
	token            string // the holder of a provisional slot
	wait             time.Duration
	now, slot        int64 // µs, Redis clock
	interval, spread time.Duration
	factor           float64
	recv             time.Time // local clock when the answer was read
	start            time.Time // slot on the local clock
}

func us(d time.Duration) int64 { return d.Microseconds() }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// call runs the script once for an operation that holds no provisional slot.
func (l *Limiter) call(ctx context.Context, op string, lane Lane, reservedAt int64) (reply, error) {
	return l.run(ctx, op, lane, reservedAt, "", 0, l.cfg.MaxAhead)
}

// run runs the script once; token and claimAhead are those of a batch reservation
// ("r") or claim ("c"), ahead replaces Config.MaxAhead (a caller with a deadline).
func (l *Limiter) run(ctx context.Context, op string, lane Lane, reservedAt int64, token string, claimAhead, ahead time.Duration) (reply, error) {
	omin, omax := int64(-1), int64(-1)
	if lo, hi, ok := l.obs.bounds(); ok {
		omin, omax = us(lo), us(hi)
	}
	c := l.cfg
	args := []any{
		op, int(lane), ftoa(c.Rate), us(ahead), omin, omax,
		us(c.InitialSpread), us(c.MinSpread), us(c.MaxSpread),
		ftoa(c.Recovery), ftoa(c.Decrease), ftoa(c.MinFactor), reservedAt,
		keyTTL.Milliseconds(), us(spreadEpoch), us(MaxAheadLimit + time.Second), ftoa(c.BatchAhead),
		UsageSeconds, token, us(claimAhead),
	}
	sent := time.Now()
	v, err := script.Run(ctx, l.rdb, []string{c.Key, keys.LimiterUsage(c.Key), keys.LimiterHeld(c.Key)}, args...).Int64Slice()
	recv := time.Now()
	if err != nil {
		return reply{}, err
	}
	if len(v) != 8 {
		return reply{}, fmt.Errorf("unexpected script reply of %d values", len(v))
	}
	r := reply{
		ok: v[0] == 1, lost: v[0] == -1, kind: v[7], wait: time.Duration(v[1]) * time.Microsecond, now: v[2], slot: v[3],
		interval: time.Duration(v[4]) * time.Microsecond, spread: time.Duration(v[5]) * time.Microsecond,
		factor: float64(v[6]) / 1e6, recv: recv, token: token,
	}
	l.clk.note(sent, recv, r.now)
	r.start = l.clk.local(r.slot)
	l.interval.Store(int64(r.interval))
	l.spread.Store(int64(r.spread))
	l.factor.Store(v[6])
	if d, old := recv.Sub(sent), time.Duration(l.rtt.Load()); old == 0 {
		l.rtt.Store(int64(d))
	} else {
		l.rtt.Store(int64(old + (d-old)/8))
	}
	return r, nil
}

// claimLead is how long before its slot a batch waiter claims it: Config.ClaimLead plus
// the recent peak delay from when a claim was due to its answer (timer lateness and
// round trip; at least the average round trip), so the confirmation is back before the
// slot even on a busy machine. At most a quarter interval, so that claims leave most
// of a provisional slot's time to interactive reservations.
func (l *Limiter) claimLead() time.Duration {
	d := max(time.Duration(l.rtt.Load()), time.Duration(l.claimPeak.Load()))
	return min(l.cfg.ClaimLead+d, l.Interval()/4)
}

// noteClaim records the delay from when a claim was due to its answer; the peak decays
// by 1/32 per claim (a half-life of about 22 claims).
func (l *Limiter) noteClaim(d time.Duration) {
	old := time.Duration(l.claimPeak.Load())
	l.claimPeak.Store(int64(max(d, old-old/32)))
}

// reserve asks for a slot once, without waiting. A batch slot due later than the claim
// lead is provisional, held under the reply's token.
func (l *Limiter) reserve(ctx context.Context, lane Lane) (reply, error) {
	return l.reserveBefore(ctx, lane, time.Time{})
}

// reserveBefore is reserve for a caller with a deadline (zero: none): an interactive
// slot may reach no further than it, so that a slot is never reserved for a caller
// that cannot use it.
func (l *Limiter) reserveBefore(ctx context.Context, lane Lane, deadline time.Time) (reply, error) {
	ahead := l.cfg.MaxAhead
	if !deadline.IsZero() {
		ahead = max(0, min(ahead, time.Until(deadline)))
	}
	var token string
	if lane == Batch {
		token = newToken()
	}
	r, err := l.run(ctx, "r", lane, 0, token, l.claimLead(), ahead)
	if err != nil {
		return reply{}, fmt.Errorf("ratelimit: reserve %s slot: %w", lane, err)
	}
	switch {
	case !r.ok:
		l.lanes[lane].refusals.Add(1)
	case r.kind == preempting:
		l.lanes[lane].preempted.Add(1)
	}
	return r, nil
}

// claim asks once to confirm the provisional slot held under token. It confirms a slot
// due within twice the claim lead (the claim is sent one lead before the slot).
func (l *Limiter) claim(ctx context.Context, token string) (reply, error) {
	r, err := l.run(ctx, "c", Batch, 0, token, 2*l.claimLead(), l.cfg.MaxAhead)
	if err != nil {
		return reply{}, fmt.Errorf("ratelimit: claim batch slot: %w", err)
	}
	return r, nil
}

// errLost is confirm's answer for a provisional slot the script no longer knows.
var errLost = errors.New("ratelimit: provisional slot lost")

// confirm sleeps until one claim lead before the provisional slot of res and claims it.
// When an interactive reservation took it, the holder was given a later slot: confirm
// sleeps again until that one, and so on; it returns res with the confirmed slot. It
// returns errLost when the script no longer knows the token, and ctx's error when ctx
// is done first (the slot is then left for an interactive reservation to take).
func (l *Limiter) confirm(ctx context.Context, res Reservation, token string) (Reservation, error) {
	for {
		due := res.Start.Add(-l.claimLead())
		if now := time.Now(); now.After(due) {
			due = now // a reservation answered late: not the claim's delay
		}
		if !sleep(ctx, time.Until(due)) {
			return res, ctx.Err()
		}
		r, err := l.claim(ctx, token)
		if err != nil {
			return res, err
		}
		l.noteClaim(r.recv.Sub(due))
		if r.lost {
			return res, errLost
		}
		if moved := r.slot != res.Slot.UnixMicro(); moved || !r.ok {
			if moved {
				l.lanes[Batch].preempted.Add(1)
			}
			res.Slot, res.Interval = time.UnixMicro(r.slot), r.interval
		}
		res.Start = r.start // with the latest clock sample
		if r.ok {
			return res, nil
		}
	}
}

// newToken returns a random name for the holder of a provisional slot.
func newToken() string { return strconv.FormatUint(rand.Uint64(), 36) }

// ErrNoSlot is returned by WaitBefore when no slot could be reserved before its
// deadline. Nothing was reserved.
var ErrNoSlot = errors.New("ratelimit: no slot before the deadline")

// Wait blocks until the caller may call the upstream in lane: it reserves a slot in
// Redis and sleeps until it is due. A refused reservation (a batch slot not due yet, an
// interactive slot beyond MaxAhead) is retried at the time Redis names, plus a small
// random spread that shrinks the longer the caller has waited, so that waiters across
// processes neither stampede nor starve. Within one Limiter, waiters of a lane are served
// in arrival order and only the first of them polls Redis.
//
// A batch slot is provisional until Wait confirms it, one claim lead (Config.ClaimLead
// plus the recent delay of claims) before it is due: an interactive reservation made in
// the meantime may take it, and Wait then waits for the later slot its waiter was
// given. Wait never returns an unconfirmed slot.
//
// When ctx is done first, Wait returns an error wrapping ctx.Err(); a slot it had already
// reserved is simply left unused (the rate can only be undershot, never exceeded).
// Redis errors are returned wrapped.
func (l *Limiter) Wait(ctx context.Context, lane Lane) (Reservation, error) {
	return l.WaitBefore(ctx, lane, time.Time{})
}

// WaitBefore is Wait for a caller that gives up if it cannot reserve a slot before
// deadline (the zero time: never): it then returns ErrNoSlot, having reserved nothing.
// Once a slot is reserved, WaitBefore sleeps until it whatever the deadline (a batch slot
// taken by an interactive reservation included: its waiter waits for the later one), so
// that a give-up never wastes a slot; only ctx ends that sleep.
func (l *Limiter) WaitBefore(ctx context.Context, lane Lane, deadline time.Time) (Reservation, error) {
	if lane != Interactive && lane != Batch {
		return Reservation{}, fmt.Errorf("ratelimit: wait: unknown lane %d", int(lane))
	}
	began := time.Now()
	c := &l.lanes[lane]
	canceled := func(what string) (Reservation, error) {
		c.canceled.Add(1)
		return Reservation{}, fmt.Errorf("ratelimit: wait for %s %s: %w", lane, what, ctx.Err())
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}

	turn := l.turns[lane]
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return canceled("turn")
	case <-expired:
		return Reservation{}, ErrNoSlot
	}
	held := true
	release := func() {
		if held {
			<-turn
			held = false
		}
	}
	defer release()

	for {
		r, err := l.reserveBefore(ctx, lane, deadline)
		if err != nil {
			if ctx.Err() != nil {
				return canceled("slot")
			}
			return Reservation{}, err
		}
		if !r.ok {
			retry := r.wait + spreadFor(r.interval, time.Since(began))
			if !deadline.IsZero() && time.Now().Add(retry).After(deadline) {
				return Reservation{}, ErrNoSlot
			}
			if !sleep(ctx, retry) {
				return canceled("slot")
			}
			continue
		}
		release()
		res := Reservation{
			Lane:     lane,
			Start:    r.start,
			Slot:     time.UnixMicro(r.slot),
			Reserved: time.UnixMicro(r.now),
			Interval: r.interval,
		}
		if r.kind == provisional {
			res, err = l.confirm(ctx, res, r.token)
			switch {
			case errors.Is(err, errLost):
				// Forgotten after a step of Redis's clock: reserve afresh.
				if !held {
					select {
					case turn <- struct{}{}:
						held = true
					case <-ctx.Done():
						return canceled("turn")
					}
				}
				continue
			case err != nil && ctx.Err() != nil:
				return canceled("slot")
			case err != nil:
				return Reservation{}, err
			}
		}
		if !sleep(ctx, time.Until(res.Start)) {
			return canceled("slot")
		}
		if late := time.Since(res.Start); late > lateLimit(r.spread) {
			// A stalled process (a loaded CPU, a GC pause) that calls now could land
			// next to the following slot's call: more delay than the spread the
			// spacing allows for. Drop the slot (the rate is only undershot) and
			// reserve a fresh one.
			c.late.Add(1)
			if !held {
				select {
				case turn <- struct{}{}:
					held = true
				case <-ctx.Done():
					return canceled("turn")
				}
			}
			continue
		}
		res.Waited = time.Since(began)
		c.grants.Add(1)
		c.wait.Add(int64(res.Waited))
		return res, nil
	}
}

// lateLimit is how late after its slot a caller may still use it: half the spread
// the spacing allows for, and at least 2ms (a timer's ordinary lateness).
func lateLimit(spread time.Duration) time.Duration {
	return max(spread/2, 2*time.Millisecond)
}

// spreadFor is the random delay added to a retry: up to a quarter interval for a fresh
// waiter, shrinking as 1/(1 + intervals waited) so that old waiters arrive first.
func spreadFor(interval, waited time.Duration) time.Duration {
	span := interval / 4
	if interval > 0 {
		span = time.Duration(float64(span) / (1 + float64(waited)/float64(interval)))
	}
	if span <= 0 {
		return 0
	}
	return rand.N(span)
}

// sleep waits d or until ctx is done, and reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Observe reports how a granted call went: done is when the upstream's answer arrived.
// The delay from the slot to done, measured on this process's clock, is kept in a
// window of the last Config.Window observations; its range (largest minus smallest) is
// shared through Redis and widens the spacing of every process's slots, so that arrival
// jitter at the upstream cannot squeeze Rate+1 calls into one second. The delay is
// counted from the slot's place on this process's clock (Reservation.Start), which
// the round trip of the answer that granted it does not move (see clock).
//
// Report calls that got an answer from the upstream (success or API error), not
// transport failures. A zero Reservation, or a done before its Start, is ignored.
func (l *Limiter) Observe(res Reservation, done time.Time) {
	if res.Start.IsZero() {
		return
	}
	d := done.Sub(res.Start)
	if d < 0 {
		return
	}
	l.obs.add(d)
}

// Penalize lowers the shared rate after the upstream answered RequestLimitExceeded to
// the call made with res: the rate factor is multiplied by Config.Decrease (down to
// Config.MinFactor), the next free slot is pushed back by one interval, and the factor
// then climbs back by Config.Recovery per second. A reservation granted before the
// latest penalty is ignored, since it was paced at the old rate: a burst of refusals
// caused by one overrun lowers the rate once. A zero res always penalizes.
func (l *Limiter) Penalize(ctx context.Context, res Reservation) error {
	var at int64
	if !res.Reserved.IsZero() {
		at = res.Reserved.UnixMicro()
	}
	r, err := l.call(ctx, "p", res.Lane, at)
	if err != nil {
		return fmt.Errorf("ratelimit: penalize: %w", err)
	}
	if r.ok {
		l.penalties.Add(1)
	}
	return nil
}

// Rate returns the current effective rate, in calls per second: Config.Rate times the
// shared factor lowered by Penalize (the pacing itself is 1/Interval, slightly lower to
// leave room for the observed delay spread).
func (l *Limiter) Rate(ctx context.Context) (float64, error) {
	r, err := l.call(ctx, "s", Interactive, 0)
	if err != nil {
		return 0, fmt.Errorf("ratelimit: read rate: %w", err)
	}
	return l.cfg.Rate * r.factor, nil
}

// Interval returns the spacing of slots on the latest answer from Redis (before the
// first, the cold-start spacing): (1s + spread) / (Rate × factor).
func (l *Limiter) Interval() time.Duration { return time.Duration(l.interval.Load()) }

// Stats returns a snapshot of the Limiter's counters.
func (l *Limiter) Stats() Stats {
	lane := func(c *laneCounters) LaneStats {
		return LaneStats{
			Grants: c.grants.Load(), Refusals: c.refusals.Load(), Canceled: c.canceled.Load(), Late: c.late.Load(),
			Preempted: c.preempted.Load(), Wait: time.Duration(c.wait.Load()),
		}
	}
	return Stats{
		Interactive: lane(&l.lanes[Interactive]),
		Batch:       lane(&l.lanes[Batch]),
		Penalties:   l.penalties.Load(),
		Interval:    l.Interval(),
		Spread:      time.Duration(l.spread.Load()),
		Factor:      float64(l.factor.Load()) / 1e6,
	}
}
