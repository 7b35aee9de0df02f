// Package ratelimit is the global upstream limiter: one pacing shared by every worker
// process on every machine, so that the upstream never sees more than Config.Rate calls
// in any sliding second, while interactive calls go before batch ones.
//
// # State and clock
//
// A limiter's whole state is one Redis hash (Config.Key, from keys.Limiter; one key, so it
// works on Redis Cluster) changed only by one small Lua script that reads the time with
// redis.call('TIME'). Every process therefore uses Redis's clock, never its own: worker
// clocks may drift apart without effect. Scripts that call TIME and then write need
// Redis 5 or later (effects replication), which every supported Redis has.
//
// # Pacing by reservation
//
// The hash holds tat, the next free slot. A reservation takes slot s = max(now, tat),
// sets tat = s + interval and answers s - now; the caller sleeps until its slot and then
// calls the upstream. Grants are therefore spaced by one interval: there is no burst.
//
// # Lanes
//
// An Interactive reservation may take a slot up to Config.MaxAhead (2s) ahead; beyond
// that it is told when to come back. A Batch reservation only takes a slot due within
// Config.BatchAhead intervals (¾ by default); otherwise it is told when that will be and
// reserves nothing. A backlog of batch waiters thus holds at most one slot ahead, and an
// interactive request arriving behind any number of batch waiters gets a slot at most
// about 1 + BatchAhead intervals away. (A quarter interval wasted slots on a busy
// machine: a batch waiter woken late took its slot late, and time passed is never
// given back.) While interactive demand fills the whole rate, batch gets nothing: that
// is the product's promise (sign-ups before campaigns).
//
// Refused waiters retry at the time Redis names plus a random delay of up to a quarter
// interval that shrinks as 1/(1 + intervals waited), so old waiters tend to arrive first
// and nobody starves; the rate cannot be exceeded whatever they do, because only the
// script grants. Within one Limiter (one process) the waiters of a lane queue in arrival
// order and only the first polls Redis, so the load on Redis grows with the number of
// processes, not of goroutines, and batch slots are shared roughly evenly between
// processes that want them.
//
// # Margin from observation
//
// Calls reach the upstream some time after their slot, and that delay varies: paced at
// exactly 1/rate, Rate+1 calls could land within one second of the upstream's window.
// With an interval of (1s + spread)/rate, Rate consecutive grants span 1s + spread, so
// no second can hold Rate+1 arrivals as long as the delays vary by less than spread.
// Callers report each call with Observe; each process keeps the range (largest minus
// smallest) of its last Config.Window delays and sends it with every script call; the
// script keeps the union of the ranges reported by all processes over the last 10-20s in
// the hash, so every process paces with the same spread (per-process ranges would miss
// that one machine is farther from the upstream than another). The spread is bounded by
// Config.MinSpread (1ms) and Config.MaxSpread (250ms); before anyone has reported, it is
// Config.InitialSpread (50ms). Use of the budget is 1s/(1s + spread): with steady latency
// (spread of a few ms) at least 99%; with 30±20ms of jitter (spread ≈ 40ms) about 96%.
//
// # Adaptive rate
//
// The upstream's real window may be stricter than the documented one. Penalize (on
// RequestLimitExceeded) multiplies a factor kept in the hash by Config.Decrease (0.7,
// down to Config.MinFactor 0.2) and pushes the next slot back by one interval; the factor
// then climbs back by Config.Recovery (0.05) per second of Redis time, up to 1. The pacing
// rate is Config.Rate × factor. A refusal of a call reserved before the latest penalty is
// ignored, so one overrun seen by many workers lowers the rate once.
//
// # Usage for operators
//
// The script that grants a slot also counts it, by lane and by the second of the slot,
// and counts each Penalize in its second, in a small ring of per-second counters in a
// second hash with the same hash tag (keys.LimiterUsage): no extra round trip, and no
// effect on any reply. ReadUsage reads them; Announce and Budgets list the limiters.
//
// # Why not go-redis/redis_rate
//
// redis_rate implements GCRA with a burst and answers "allowed now or retry after"; it
// cannot reserve future slots (so waiters poll and the spacing is lost), has no priority
// lanes, and has no adaptive rate or margin. Those three are this package's reason to be.
//
// # Limits
//
// A step back of Redis's clock (a failover to a server whose clock is behind) delays
// every slot by the size of the step; a step of more than about 11s is taken as a reset
// and the next slot is put MaxAhead ahead. A failover that lost the latest writes may
// hand out up to MaxAhead of slots a second time. In both cases the upstream refuses some
// calls with RequestLimitExceeded, which callers retry and Penalize.
package ratelimit
