// Package tasks is the contract between faceidq's producers and its workers: task type
// names, queues and priority lanes, the payload of a token-apply task, the JobId scheme,
// job states, and the job record kept in Redis under keys.Result (field names and
// formats are part of the product's public interface), and the one strict reader of a
// token request (DecodeTokenRequest: HTTP bodies, NDJSON lines and CLI flags alike).
//
// Producers (package producer) and workers (package worker) both import tasks and never
// each other.
package tasks
