package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"
)

// deferral sends a task back to its queue without counting a failed attempt: the
// job could not run now (rate limited, pipeline paused, no slot in time, shutting
// down), through no fault of its own.
type deferral struct {
	reason string
	after  time.Duration
}

func (d *deferral) Error() string { return "deferred: " + d.reason }

func deferFor(after time.Duration, format string, args ...any) error {
	return &deferral{reason: fmt.Sprintf(format, args...), after: after}
}

// isFailure is asynq's Config.IsFailure: deferrals are not failures, so asynq does
// not count them against the task's retries.
func isFailure(err error) bool {
	var d *deferral
	return !errors.As(err, &d)
}

// BackoffConfig shapes the retry delays of transient upstream errors.
type BackoffConfig struct {
	// Initial is the delay before the first retry. Defaults to 500ms.
	Initial time.Duration
	// Max caps a single delay. Defaults to 60s.
	Max time.Duration
	// Multiplier grows the delay per retry. Defaults to 2.
	Multiplier float64
	// Jitter is the randomization factor: each delay is drawn from
	// [d·(1−Jitter), d·(1+Jitter)]. Defaults to 0.5.
	Jitter float64
}

func (c BackoffConfig) withDefaults() BackoffConfig {
	if c.Initial <= 0 {
		c.Initial = 500 * time.Millisecond
	}
	if c.Max <= 0 {
		c.Max = 60 * time.Second
	}
	if c.Multiplier < 1 {
		c.Multiplier = 2
	}
	if c.Jitter <= 0 || c.Jitter > 1 {
		c.Jitter = 0.5
	}
	return c
}

// Delay returns the delay before retry n+1 (n retries done so far), computed by
// backoff.ExponentialBackOff.
func (c BackoffConfig) Delay(n int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     c.Initial,
		RandomizationFactor: c.Jitter,
		Multiplier:          c.Multiplier,
		MaxInterval:         c.Max,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := b.NextBackOff()
	for i := 0; i < n && i < 64; i++ {
		d = b.NextBackOff()
	}
	return d
}

// retryDelay is asynq's Config.RetryDelayFunc for the token server.
func (c BackoffConfig) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var d *deferral
	if errors.As(err, &d) {
		return d.after
	}
	return c.Delay(n)
}
