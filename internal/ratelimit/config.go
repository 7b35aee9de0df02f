package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxAheadLimit is the largest Config.MaxAhead. The script also treats a next free slot
// further ahead than this (plus a few intervals) as a step back of Redis's clock, so every
// process may configure any MaxAhead up to it without disturbing the others.
const MaxAheadLimit = 10 * time.Second

// Config configures a Limiter. The zero value of every field but Key means its default.
// Every process sharing one Key must use the same Rate; the other fields may differ.
type Config struct {
	// Key is the Redis hash holding the limiter's state, from keys.Limiter. Required.
	Key string

	// Rate is the upstream's limit in calls per second, for every process together.
	// Defaults to 20.
	Rate float64

	// MaxAhead is how far into the future an interactive reservation may reach; beyond
	// it an interactive waiter is told to come back. Batch reservations never reach ahead.
	// At most MaxAheadLimit. Defaults to 2s.
	MaxAhead time.Duration

	// BatchAhead is how far ahead of now, in intervals, a batch reservation may take
	// its slot. A batch waiter that polls this much early sleeps on its own timer until
	// the slot, so a busy CPU that wakes it late does not waste the slot; the slot stays
	// provisional (an interactive reservation may take it) until ClaimLead before it.
	// Between 0 and 1. Defaults to 0.75.
	BatchAhead float64

	// ClaimLead is how long before its provisional slot, on top of the recent Redis
	// round trip, a batch waiter confirms it. A larger lead absorbs a late timer on a
	// busy machine; an interactive request arriving within it waits for the slot after.
	// At most 100ms. Defaults to 2ms.
	ClaimLead time.Duration

	// Window is how many recent observations (see Limiter.Observe) this process keeps to
	// measure the spread of upstream delays. Defaults to 200.
	Window int

	// InitialSpread is the delay spread assumed while no process has reported enough
	// observations (a cold start). Defaults to 50ms.
	InitialSpread time.Duration

	// MinSpread is the floor of the measured spread: room for a delay not seen in the
	// window yet (a GC pause, a busy CPU or network on the way to the upstream), and for
	// the error of mapping a slot from Redis's clock onto a worker's clock. Each
	// millisecond of spread costs 0.1 % of the rate. Defaults to 5ms.
	MinSpread time.Duration

	// MaxSpread caps the measured spread, so that one very slow answer (a timeout) cannot
	// throttle the whole fleet for a window's length; overruns beyond it are corrected by
	// Penalize instead. Defaults to 250ms.
	MaxSpread time.Duration

	// Decrease multiplies the rate factor on each penalty. Between 0 and 1 exclusive.
	// Defaults to 0.7.
	Decrease float64

	// MinFactor is the smallest rate factor penalties can reach. Between 0 and 1
	// inclusive. Defaults to 0.2.
	MinFactor float64

	// Recovery is how much rate factor is regained per second after a penalty, up to 1.
	// Defaults to 0.05 (from 0.7 back to 1 in six seconds).
	Recovery float64
}

// ErrConfig is wrapped by every error New returns for an invalid Config.
var ErrConfig = errors.New("ratelimit: invalid config")

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Rate == 0 {
		cfg.Rate = 20
	}
	if cfg.MaxAhead == 0 {
		cfg.MaxAhead = 2 * time.Second
	}
	if cfg.BatchAhead == 0 {
		cfg.BatchAhead = 0.75
	}
	if cfg.ClaimLead == 0 {
		cfg.ClaimLead = 2 * time.Millisecond
	}
	if cfg.Window == 0 {
		cfg.Window = 200
	}
	if cfg.InitialSpread == 0 {
		cfg.InitialSpread = 50 * time.Millisecond
	}
	if cfg.MinSpread == 0 {
		cfg.MinSpread = 5 * time.Millisecond
	}
	if cfg.MaxSpread == 0 {
		cfg.MaxSpread = 250 * time.Millisecond
	}
	if cfg.Decrease == 0 {
		cfg.Decrease = 0.7
	}
	if cfg.MinFactor == 0 {
		cfg.MinFactor = 0.2
	}
	if cfg.Recovery == 0 {
		cfg.Recovery = 0.05
	}
	return cfg
}

// validate reports the first invalid field of a Config that had its defaults applied.
func (cfg Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case cfg.Key == "":
		return bad("Key is required (use keys.Limiter)")
	case !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0):
		return bad("Rate must be a positive number, not %v", cfg.Rate)
	case cfg.MaxAhead < 0 || cfg.MaxAhead > MaxAheadLimit:
		return bad("MaxAhead must be between 0 and %v, not %v", MaxAheadLimit, cfg.MaxAhead)
	case cfg.ClaimLead < 0 || cfg.ClaimLead > 100*time.Millisecond:
		return bad("ClaimLead must be between 0 and 100ms, not %v", cfg.ClaimLead)
	case cfg.Window < 2:
		return bad("Window must be at least 2, not %d", cfg.Window)
	case cfg.InitialSpread < 0, cfg.MinSpread < 0, cfg.MaxSpread < 0:
		return bad("spreads must not be negative")
	case cfg.MinSpread > cfg.MaxSpread:
		return bad("MinSpread %v is above MaxSpread %v", cfg.MinSpread, cfg.MaxSpread)
	case !(cfg.BatchAhead > 0 && cfg.BatchAhead <= 1):
		return bad("BatchAhead must be above 0 and at most 1, not %v", cfg.BatchAhead)
	case !(cfg.Decrease > 0 && cfg.Decrease < 1):
		return bad("Decrease must be between 0 and 1 exclusive, not %v", cfg.Decrease)
	case !(cfg.MinFactor > 0 && cfg.MinFactor <= 1):
		return bad("MinFactor must be in (0, 1], not %v", cfg.MinFactor)
	case !(cfg.Recovery > 0) || math.IsInf(cfg.Recovery, 0):
		return bad("Recovery must be a positive number, not %v", cfg.Recovery)
	}
	return nil
}
