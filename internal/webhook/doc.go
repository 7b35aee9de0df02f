// Package webhook delivers every final job to its caller: a signed (Standard Webhooks),
// retried, SSRF-safe POST to the job's callback URL or a configured default URL.
//
// Invariants: delivery is at least once, with the same webhook-id on every attempt and
// replay; a delivery never holds an upstream slot; the dialer refuses private, loopback,
// link-local and reserved addresses (on the address actually connected to) unless the
// Policy allows them; errors and labels carry no secret and no URL path or query. The
// schedule and wiring are in docs/internals.md; DeadLetters lists and replays exhausted
// deliveries without a secret (it only enqueues).
package webhook
