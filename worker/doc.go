// Package worker is the drain side of faceidq: an asynq server that takes token-apply
// jobs lane by lane (interactive strictly before batch), waits for a slot of the
// global rate limiter, calls the upstream and acts on the error class:
//
//   - success: the job is succeeded, with BizToken, VerificationURL, ExpiresAt,
//     RequestId and Attempts; its JobId is published on keys.Done;
//   - retryable (InternalError, network, timeouts, 5xx): retried with exponential
//     backoff and jitter (cenkalti/backoff), the first retries within a second or two,
//     until Config.MaxRetries is spent; the job shows "retrying" with its last error;
//   - rate-limited (RequestLimitExceeded): retried soon without spending an attempt,
//     and the global limiter slows down;
//   - permanent: failed at once with the upstream's code and message;
//   - account-level: no job is failed for it; the pipeline switch is turned off, so
//     every worker stops calling the upstream until an operator resumes it (or, for
//     UnauthorizedOperation.Activating, a probe finds the account active again).
//
// Webhook deliveries run on a second asynq server in the same process, on their own
// queue and concurrency, so a slow receiver never holds a token-apply worker.
package worker
