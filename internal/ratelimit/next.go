package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// NextFree returns how long, on Redis's clock, until the limiter's next free slot
// (0 when one is free now). It reads the shared state with one round trip and
// reserves nothing, so a caller choosing among several budgets can ask each and
// then wait on the soonest; another process may take that slot in between.
func (l *Limiter) NextFree(ctx context.Context) (time.Duration, error) {
	r, err := l.call(ctx, "s", Interactive, 0)
	if err != nil {
		return 0, fmt.Errorf("ratelimit: read next free slot: %w", err)
	}
	return max(time.Duration(r.slot-r.now)*time.Microsecond, 0), nil
}
