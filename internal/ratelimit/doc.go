// Package ratelimit is the global upstream limiter: one pacing shared by every worker
// process, so that the upstream never sees more than Config.Rate calls in any sliding
// second, and interactive calls go before batch ones.
//
// Invariants: the whole state is one Redis hash and one sorted set of provisional batch
// slots under one hash tag, changed only by one Lua script that reads Redis's clock
// (never a process's), so it works on Redis Cluster and with drifting clocks; grants are
// reserved slots spaced by one interval (no burst); only the script grants, whatever
// waiters do; an interactive reservation may take a batch slot its holder has not
// confirmed yet, which changes who holds a slot, never when slots are; no caller calls
// without a confirmed slot. docs/internals.md explains the lanes, preemption, the margin
// from observed delays, the adaptive rate and the per-second usage counters the
// operator console reads.
package ratelimit
