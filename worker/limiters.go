package worker

import (
	"cmp"
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/ratelimit"
)

// RateLimiters returns the LimiterFunc of a worker process calling the upstream as
// account at endpoint (faceid.Client's Account and Endpoint): each action gets a
// ratelimit.Limiter configured as cfg, on keys.Limiter(account, action, endpoint), so
// every process shares one budget per action. Each budget is announced (account
// masked) for the operator console; a failed announcement only costs the console
// that budget's chart, so it is reported through onAnnounceError (may be nil).
func RateLimiters(rdb redis.UniversalClient, account, endpoint string, cfg ratelimit.Config, onAnnounceError func(error)) LimiterFunc {
	return func(action string) (Limiter, error) {
		c := cfg
		c.Key = keys.Limiter(account, action, endpoint)
		lim, err := ratelimit.New(rdb, c)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = ratelimit.Announce(ctx, rdb, ratelimit.Budget{Key: c.Key, Account: ratelimit.MaskAccount(account),
			Action: action, Endpoint: endpoint, Rate: cmp.Or(c.Rate, 20)})
		if err != nil && onAnnounceError != nil {
			onAnnounceError(err)
		}
		return lim, nil
	}
}
