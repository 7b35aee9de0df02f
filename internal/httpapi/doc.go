// Package httpapi is faceidq's HTTP API (`faceidq serve` and `faceidq api`), JSON in
// Tencent's PascalCase so that a Tencent request body works as is:
//
//	POST /v1/tokens              submit a token request (202, or 200 when final)
//	GET  /v1/tokens/{JobId}      the job (Prefer: wait=N long-polls until it is final)
//	GET  /v1/pipeline            the pipeline switch {"Paused","Reason","Since"}
//	POST /v1/pipeline/pause      the operator pauses every worker (jobs are still accepted)
//	POST /v1/pipeline/resume     and resumes them
//	GET  /healthz                the process is up (never authenticated)
//	GET  /readyz                 Redis answers (a paused pipeline is shown, not unready)
//	GET  /metrics                Prometheus metrics
//
// With Config.Campaigns (campaign.NewHandler) it also serves the campaign routes:
// /v1/batches, /v1/batches/{BatchId}[/results|/pause|/resume|/cancel|/rerun],
// /v1/links/{LinkId}[/revoke] and GET /v1/start/{LinkId}. The imports and exports of
// whole campaigns get read and write deadlines of Config.LongRequestTimeout (1h).
//
// NewOps serves the last three alone, for workers (FACEIDQ_METRICS_LISTEN).
//
// # Submitting
//
// The body of POST /v1/tokens is decoded strictly (tasks.DecodeTokenRequest): unknown or
// misspelt names, repeated names, values of the wrong type and data after the object
// are refused, naming the field. producer.Submit then validates the values; nothing is
// enqueued for a refused request. Idempotency-Key makes a retry return the first job
// (never a second one). Prefer: wait=N (RFC 7240, N capped at Config.MaxWait, 30s)
// holds the answer until the job is final or N seconds pass, and the answer carries
// Preference-Applied: wait=N. Every answer carries Location: /v1/tokens/{JobId}.
// The body may be at most Config.MaxBodyBytes (9 MiB: an 8 MB image and the rest);
// a larger one is answered 413.
//
// Waiting requests share ONE subscription per process to keys.Done, fanned out to
// them: a waiter registers, waits for the subscription to be confirmed, then reads
// the job, so a job that finishes in between is never missed.
//
// # Authentication
//
// With Config.Tokens set (FACEIDQ_API_TOKENS), every route but /healthz and
// GET /v1/start/{LinkId}, /readyz and /metrics included, requires Authorization:
// Bearer <token>. Start links are opened by end users from an email: their
// unguessable LinkId (128 random bits) is the capability. Tokens are compared in
// constant time (SHA-256 of both sides, every token compared). A missing or wrong
// token is answered 401 with WWW-Authenticate: Bearer.
//
// # Errors
//
// Every error is {"Error":{"Code":…,"Message":…},"RequestId":…} (also in the
// X-Request-Id header), the message naming the field and the reason:
//
//	400 MissingParameter, InvalidParameter, InvalidParameterValue, UnsupportedRegion
//	401 AuthFailure.UnauthorizedOperation
//	404 ResourceNotFound (route), ResourceNotFound.Job (unknown or malformed JobId)
//	405 UnsupportedOperation.MethodNotAllowed (with Allow)
//	409 FailedOperation.IdempotencyKeyInFlight (retry shortly; Retry-After: 1)
//	413 RequestSizeLimitExceeded
//	422 InvalidParameterValue.IdempotencyKeyReused (same key, different request)
//	503 InternalError.Unavailable (Redis unreachable: nothing was done; Retry-After: 1)
//
// Internal errors are logged with their detail; answers never carry a stack, a secret
// or image bytes.
package httpapi
