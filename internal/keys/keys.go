// Package keys builds every Redis key and channel name faceidq uses, in one place.
//
// Keys that a Lua script touches together share a hash tag ({…}) so they live in one
// Redis Cluster slot. The result hash and the done channel are part of the public
// contract (product spec: "Results in Redis") and never change shape.
package keys

// Prefix starts every faceidq key.
const Prefix = "faceidq:"

// Done is the channel on which the JobId of every final job is published.
const Done = Prefix + "done"

// Result is the hash holding job JobID's state and result (public contract).
func Result(jobID string) string { return Prefix + "result:" + jobID }

// Idempotency maps a caller's Idempotency-Key (already hashed with its scope) to a JobId.
func Idempotency(hashedKey string) string { return Prefix + "idem:" + hashedKey }

// Image holds one stored CompareImageBase64, addressed by the SHA-256 of its content.
func Image(sum string) string { return Prefix + "image:" + sum }

// Limiter is the global rate limiter's state for one account, action and endpoint.
// The name is hash-tagged so that every key of one limiter shares a Cluster slot.
func Limiter(account, action, endpoint string) string {
	return Prefix + "{limiter:" + account + ":" + action + ":" + endpoint + "}"
}

// Pipeline is the hash holding the pipeline switch (Paused, Reason, Since).
const Pipeline = Prefix + "pipeline"

// PipelineEvents is the channel on which pipeline pause and resume are announced.
const PipelineEvents = Prefix + "pipeline:events"

// Batch is the hash describing campaign batchID.
func Batch(batchID string) string { return Prefix + "batch:" + batchID }

// BatchJobs is the list of the JobIds of campaign batchID, in import order.
func BatchJobs(batchID string) string { return Prefix + "batch:" + batchID + ":jobs" }

// BatchName maps a campaign name to its BatchId.
func BatchName(name string) string { return Prefix + "batchname:" + name }

// Batches is the sorted set of every BatchId by creation time.
const Batches = Prefix + "batches"

// Link is the hash of one deferred-minting start link.
func Link(linkID string) string { return Prefix + "link:" + linkID }

// WebhookDead is the sorted set of the JobIds whose webhook delivery is exhausted (or
// was refused), scored by the time (unix milliseconds) it was given up. It shares a
// hash tag with WebhookDeadPayloads.
const WebhookDead = Prefix + "{webhook:dead}"

// WebhookDeadPayloads is the hash mapping the JobIds of WebhookDead to the payload of
// their delivery task, for replay.
const WebhookDeadPayloads = Prefix + "{webhook:dead}:payloads"

// ProbeLock is held by the one worker that probes the upstream while the pipeline is
// paused for a condition that clears by itself.
const ProbeLock = Prefix + "pipeline:probe"
