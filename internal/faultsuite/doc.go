// Package faultsuite is faceidq's reliability and security suite: Go tests that run
// the real faceidq binary (built once per test run) as separate processes — `faceidq
// api`, `faceidq worker` — against real redis-server processes and an in-process
// upstream simulator on a loopback port, and then break things: kill -9 of workers,
// a Redis restart, upstream faults (InternalError, outage, latency, an account in
// arrears), a soak, SIGTERM under load, hostile HTTP input, secret and biometric
// leaks, authentication of every route, Redis AUTH, ACL users and TLS.
//
// The package holds tests only. By default (what CI runs, with or without -short)
// every test runs its short variant: the whole package takes a few minutes under
// -race on two cores. The long variants run with
//
//	FACEIDQ_FAULT_FULL=1 go test -run . -timeout 60m ./internal/faultsuite
//
// (1,000 jobs and three worker kills, a 2-minute upstream outage, …), and the full soak
// (2,000 POST/s against `faceidq api`, the upstream at 20/s, until the backlog drains)
// with
//
//	FACEIDQ_SOAK=10m go test -run TestSoak -timeout 60m ./internal/faultsuite
//
// (FACEIDQ_SOAK_RATE changes the rate; FACEIDQ_SOAK_DRAIN=1 also waits until the
// backlog has drained at 20/s, hours after a long soak). FACEIDQ_FAULT_BIN=<path> runs
// a faceidq binary built elsewhere instead of building cmd/faceidq.
//
// Tests that need redis-server skip without it, and fail instead under
// FACEIDQ_REQUIRE_REDIS=1 (see internal/redistest). The Redis TLS test trusts its CA
// through SSL_CERT_FILE (REDIS_URL has no CA option) and skips when redis-server was
// built without TLS.
package faultsuite
