// Package tasks is the contract between faceidq's producers and its workers: one task
// type per upstream action, queues and priority lanes, payloads, the JobId scheme, job
// states, and the job record kept in Redis (public field names and formats).
//
// Producers and workers both import tasks and never each other. A payload never
// carries image bytes.
package tasks
