// Package keys builds every Redis key and channel name faceidq uses, in one place.
//
// Keys that a Lua script or a MULTI touches together share a hash tag ({…}) so they
// live in one Redis Cluster slot: every key of one campaign carries {BatchId}. Keys
// without a tag (job records, global sets) are never combined with others in one
// script or MULTI. The result hash and the done channel are part of the public
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

// LimiterUsage is the hash counting a limiter's grants and penalties per second, for
// operators; limiterKey is a Limiter key, whose hash tag it shares.
func LimiterUsage(limiterKey string) string { return limiterKey + ":usage" }

// LimiterHeld is the sorted set of a limiter's provisional batch slots (holder token
// scored by slot) that an interactive reservation may still take; limiterKey is a
// Limiter key, whose hash tag it shares.
func LimiterHeld(limiterKey string) string { return limiterKey + ":held" }

// Budgets is the hash describing every limiter a worker announced (limiter key to a
// JSON description), for operators.
const Budgets = Prefix + "budgets"

// Pipeline is the hash holding the pipeline switch (Paused, Reason, Since).
const Pipeline = Prefix + "pipeline"

// PipelineEvents is the channel on which pipeline pause and resume are announced.
const PipelineEvents = Prefix + "pipeline:events"

// Batch is the hash describing campaign batchID.
// Every key of the campaign shares its hash tag {batchID}.
func Batch(batchID string) string { return batchKey(batchID) }

func batchKey(batchID string) string { return Prefix + "batch:{" + batchID + "}" }

// BatchJobs is the list of the JobIds of campaign batchID, in import order.
func BatchJobs(batchID string) string { return batchKey(batchID) + ":jobs" }

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

// BatchRows is the hash mapping each row key of campaign batchID to the JobId (or, in
// link mode, the LinkId) made for it: re-importing a row finds it there and creates
// nothing.
func BatchRows(batchID string) string { return batchKey(batchID) + ":rows" }

// BatchRerun is the list of the JobIds of campaign batchID that were reopened for a
// re-run, in the order they were reopened; the feeder feeds it before BatchJobs.
func BatchRerun(batchID string) string { return batchKey(batchID) + ":rerun" }

// BatchImages is the hash mapping the JobIds of campaign batchID whose image is not
// in Redis yet to the source the feeder loads it from (a file path or a row of the
// imported file).
func BatchImages(batchID string) string { return batchKey(batchID) + ":images" }

// BatchLinks is the list of the LinkIds of a link-mode campaign, in import order.
func BatchLinks(batchID string) string { return batchKey(batchID) + ":links" }

// BatchFeedLock is held by the process feeding campaign batchID when that campaign
// is fed by its importing process (its images are files only that process sees).
func BatchFeedLock(batchID string) string { return batchKey(batchID) + ":feedlock" }

// BatchesActive is the set of the BatchIds that may have jobs left to feed.
const BatchesActive = Prefix + "batches:active"

// FeedInflight is the hash of the campaign jobs fed to the batch queue and not final
// yet (JobId to "<image bytes> <BatchId> <image ref>"): the feeder's budget.
const FeedInflight = Prefix + "feed:inflight"

// FeederLock is held by the one worker process whose campaign feeder is feeding.
const FeederLock = Prefix + "feed:lock"

// BatchImportLock is held by the import writing into campaign batchID, so that two
// imports of one campaign do not run at once.
func BatchImportLock(batchID string) string { return batchKey(batchID) + ":importlock" }

// UpstreamDown is set while the upstream is unreachable (network errors, 5xx pages),
// so that the first success after an outage runs the jobs waiting in backoff at once.
const UpstreamDown = Prefix + "upstream:down"

// Acks is a counter the producer increments on the connection of its WAIT for
// replicas (producer.Config.AckReplicas): WAIT confirms that connection's writes.
const Acks = Prefix + "acks"

// BacklogTickets counts the jobs that entered lane's queue of upstream action: a job's
// ticket is the value its increment returned (internal/backlog). An action's four
// counters share a hash tag, so that one MGET reads them on Redis Cluster.
func BacklogTickets(action, lane string) string {
	return Prefix + "{backlog:" + action + "}:" + lane + ":tickets"
}

// BacklogServed counts the jobs that left lane's queue of upstream action for good
// (reached the upstream's slot, expired, or were dropped before a call).
func BacklogServed(action, lane string) string {
	return Prefix + "{backlog:" + action + "}:" + lane + ":served"
}
