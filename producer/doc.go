// Package producer is the one way a job is created and enqueued: Submit (API, CLI,
// start links) validates a token request, stores its image once outside the queue,
// writes the job's record and puts its task on its lane, with Idempotency-Key
// semantics; campaigns validate rows with Validate, write them with WriteDeferred and
// enqueue them later with Feed.
//
// Nothing is written for a request that fails validation, and a Submit whose enqueue
// fails leaves nothing behind: it returns a job that will run, or an error. Close
// stops the goroutines New starts.
package producer
