// Package tasks is the contract between faceidq's producers and its workers: one task
// type per upstream action, queues and priority lanes, payloads, the JobId scheme, job
// states, the job record kept in Redis (public field names and formats), and the one
// strict reader of a token request (DecodeTokenRequest: HTTP bodies, NDJSON lines and
// CLI flags alike).
//
// Producers and workers both import tasks and never each other. A payload never
// carries image bytes.
package tasks
