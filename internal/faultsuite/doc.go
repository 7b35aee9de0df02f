// Package faultsuite is faceidq's reliability and security suite: tests that run the
// real binary's api and worker processes (internal/proctest) against real redis-server
// processes and an in-process upstream simulator, and then break things (kill -9, Redis
// restarts, upstream faults, SIGTERM under load, hostile input, leaks, authentication).
//
// The package holds tests only; each test runs a short variant by default. The long
// variants and their knobs are in docs/internals.md.
package faultsuite
