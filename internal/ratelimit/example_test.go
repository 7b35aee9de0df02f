package ratelimit_test

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/ratelimit"
)

// errRateLimited stands for the upstream's RequestLimitExceeded.
var errRateLimited = errors.New("RequestLimitExceeded")

// callUpstream stands for one call of the upstream API; answered reports whether the
// upstream answered at all (success or API error), as opposed to a transport failure.
func callUpstream(ctx context.Context) (answered bool, err error) { return true, nil }

// A worker waits for its slot, calls the upstream, reports how long the answer took,
// and penalizes the shared rate when the upstream says it was exceeded.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	l, err := ratelimit.New(rdb, ratelimit.Config{
		Key:  keys.Limiter("AKID-or-sub-account", "ApplyWebVerificationBizTokenIntl", "faceid.intl.tencentcloudapi.com"),
		Rate: 20,
	})
	if err != nil {
		panic(err)
	}

	res, err := l.Wait(ctx, ratelimit.Batch) // ratelimit.Interactive for a person waiting
	if err != nil {
		return // ctx done, or Redis unreachable: retry the job later
	}
	answered, err := callUpstream(ctx)
	if answered {
		l.Observe(res, time.Now())
	}
	if errors.Is(err, errRateLimited) {
		_ = l.Penalize(ctx, res)
	}
}
