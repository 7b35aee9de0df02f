// Package webhook delivers every final job to its caller: a signed, retried, SSRF-safe
// POST of {"type":"token.succeeded"|"token.failed","timestamp":…,"data":<job>} to the
// job's callback URL, or to a configured default URL.
//
// # Flow
//
// When a job becomes final, the worker enqueues NewTask(job, url) (or Sender.TaskFor):
// a tasks.TypeDeliverWebhook task on queue tasks.QueueWebhooks whose payload holds the
// event id ("msg_…", the webhook-id), the URL and the exact body. Sender.ProcessTask
// (an asynq.Handler) makes one attempt per run; it never holds an upstream token and
// never calls the upstream. Delivery is at least once: receivers de-duplicate on
// webhook-id, which is the same for every attempt and every replay of an event.
//
// # Signatures
//
// Per the Standard Webhooks specification: headers webhook-id, webhook-timestamp (unix
// seconds, of this attempt) and webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", keyed by the base64-decoded part of a "whsec_" secret. During a
// rotation (several secrets) every signature is sent, space-separated; see Sign.
//
// # Retries
//
// A 2xx is a success; anything else, 3xx included, is a failure. Failures are retried by
// asynq on the schedule of Config.Schedule (DefaultSchedule: 5 s, 5 min, 30 min, 2 h,
// 5 h, 10 h, 10 h after an immediate first attempt, as Svix does). Sender.RetryDelay,
// wired as the asynq server's RetryDelayFunc for webhook tasks, computes each delay with
// github.com/cenkalti/backoff/v4: a backoff.BackOff walks the schedule, and each step's
// jitter is drawn by a backoff.ExponentialBackOff whose initial and maximum interval are
// the step, multiplier 1 and RandomizationFactor Config.RandomizationFactor (0.2), so
// the library picks the delay uniformly in [step·0.8, step·1.2]. A Retry-After (seconds
// or an HTTP date) on a 429 or 503 replaces the scheduled delay. 410 Gone stops the
// retries (asynq.SkipRetry). Each attempt is recorded on the job through Store
// (tasks.Webhook: status pending, retrying, delivered, exhausted or gone; attempts; last
// error; last time). A delivery that runs out of attempts, or whose destination is
// refused, is kept in keys.WebhookDead; DeadLetters lists and replays those (it needs no
// secret: it only enqueues), for the CLI and the HTTP API alike.
//
// # Safety
//
// ValidateURL checks a callback URL when a job is submitted. At delivery, NewClient's
// dialer refuses, in a net.Dialer Control hook on the address actually connected to,
// every private, loopback, link-local (cloud metadata), CGNAT, unspecified, multicast
// and reserved address, and IPv6 forms of them, unless Policy.Allow lists it; plain
// http goes only to allow-listed networks unless Policy.AllowHTTP. Redirects are not
// followed, connect and request are bounded by timeouts, and at most
// Config.ResponseLimit bytes of a response are read. Errors, outcomes and observer
// labels carry no secret and no URL path or query.
//
// # Wiring
//
//	sender, err := webhook.New(webhook.Config{Secrets: secrets, Policy: policy, Redis: rdb, Enqueuer: client}, store, obs)
//	mux.Handle(tasks.TypeDeliverWebhook, sender)
//	// asynq.Config: Queues includes tasks.QueueWebhooks; RetryDelayFunc dispatches
//	// tasks of type tasks.TypeDeliverWebhook to sender.RetryDelay.
package webhook
