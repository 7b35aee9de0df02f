// Package producer is the enqueue side of faceidq: the Go API that validates a token
// request, stores its image once outside the queue, writes the job's record and puts
// its task on the right lane, with Idempotency-Key semantics (the same key gives back
// the same job, never a second one).
//
// Nothing is written for a request that fails validation, and a request whose enqueue
// fails leaves nothing behind: Submit either returns a job that will run, or an error.
package producer
