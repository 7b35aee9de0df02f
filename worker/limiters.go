package worker

import (
	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/ratelimit"
)

// RateLimiters returns the LimiterFunc of a worker process calling the upstream as
// account at endpoint (faceid.Client's Account and Endpoint): each action gets a
// ratelimit.Limiter configured as cfg, on keys.Limiter(account, action, endpoint), so
// every process shares one budget per action.
func RateLimiters(rdb redis.Scripter, account, endpoint string, cfg ratelimit.Config) LimiterFunc {
	return func(action string) (Limiter, error) {
		c := cfg
		c.Key = keys.Limiter(account, action, endpoint)
		return ratelimit.New(rdb, c)
	}
}
