package webhook

import (
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"
)

// DefaultSchedule is the delay before each retry, after an immediate first attempt, in
// the spirit of Svix: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight attempts over about
// 27.6 hours). Each delay is jittered by the randomization factor.
var DefaultSchedule = []time.Duration{
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// DefaultRandomizationFactor is the jitter applied to each scheduled delay: a delay d
// becomes a uniformly random value in [d·(1-f), d·(1+f)].
const DefaultRandomizationFactor = 0.2

// scheduleBackOff is a backoff.BackOff that walks a fixed schedule. The jitter of each
// step is computed by backoff itself: a backoff.ExponentialBackOff whose initial and
// maximum interval are the step and whose multiplier is 1 yields, on its first
// NextBackOff, a random value within the randomization factor around the step.
// After the last step it returns backoff.Stop.
type scheduleBackOff struct {
	steps  []time.Duration
	factor float64
	next   int
}

var _ backoff.BackOff = (*scheduleBackOff)(nil)

// NextBackOff returns the jittered delay of the next step, or backoff.Stop.
func (b *scheduleBackOff) NextBackOff() time.Duration {
	if b.next >= len(b.steps) {
		return backoff.Stop
	}
	d := b.steps[b.next]
	b.next++
	step := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(d),
		backoff.WithMaxInterval(d),
		backoff.WithMultiplier(1),
		backoff.WithRandomizationFactor(b.factor),
		backoff.WithMaxElapsedTime(0),
	)
	return step.NextBackOff()
}

// Reset goes back to the first step.
func (b *scheduleBackOff) Reset() { b.next = 0 }

// delay returns the jittered delay before retry n+1, after n retries (asynq's count).
// Beyond the schedule the last step repeats.
func (s *Sender) delay(n int) time.Duration {
	b := &scheduleBackOff{steps: s.schedule, factor: s.factor}
	// Position the BackOff on step n (clamped to the last) and let it compute the delay.
	b.next = min(max(n, 0), len(s.schedule)-1)
	return b.NextBackOff()
}

// RetryDelay is an asynq.RetryDelayFunc for TypeDeliverWebhook tasks: it honours a
// Retry-After the receiver sent with a 429 or 503 (capped by Config.MaxRetryAfter) and
// otherwise follows the schedule (Config.Schedule, DefaultSchedule by default) with
// jitter. n is the number of retries so far, as asynq passes it. Wire it in the asynq
// server's Config.RetryDelayFunc for tasks of type tasks.TypeDeliverWebhook.
func (s *Sender) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var de *DeliveryError
	if errors.As(err, &de) && de.RetryAfter > 0 {
		return min(de.RetryAfter, s.maxRetryAfter)
	}
	return s.delay(n)
}
