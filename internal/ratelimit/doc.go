// Package ratelimit is the global upstream limiter: one pacing shared by every worker
// process, so that the upstream never sees more than Config.Rate calls in any sliding
// second, and interactive calls go before batch ones.
//
// Invariants: the whole state is one Redis hash changed only by one Lua script that reads
// Redis's clock (never a process's), so it works on Redis Cluster and with drifting
// clocks; grants are reserved slots spaced by one interval (no burst); only the script
// grants, whatever waiters do. docs/internals.md explains the lanes, the margin from
// observed delays, the adaptive rate and the per-second usage counters
// the operator console reads.
package ratelimit
