package ratelimit

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/redis/go-redis/v9"
)

// UsageSeconds is how many recent seconds the usage counters of a limiter keep.
const UsageSeconds = 300

// Second is one second of a limiter's use, on Redis's clock.
type Second struct {
	// At is the start of the second.
	At time.Time `json:"At"`
	// Interactive and Batch count the slots granted in each lane that fall in this
	// second: the calls made, less the few slots a late process dropped.
	Interactive int64 `json:"Interactive"`
	Batch       int64 `json:"Batch"`
	// Exceeded counts the RequestLimitExceeded answers reported (Penalize) in it.
	Exceeded int64 `json:"Exceeded"`
}

// ReadUsage returns the last n seconds (at most UsageSeconds) of the limiter at
// limiterKey, oldest first and ending with the current second of Redis's clock; a
// second without use is present with zero counts. It reads with one round trip.
func ReadUsage(ctx context.Context, rdb redis.Cmdable, limiterKey string, n int) ([]Second, error) {
	n = min(max(n, 1), UsageSeconds)
	var tm *redis.TimeCmd
	var all *redis.MapStringStringCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		tm = p.Time(ctx)
		all = p.HGetAll(ctx, keys.LimiterUsage(limiterKey))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ratelimit: read usage of %s: %w", limiterKey, err)
	}
	now := tm.Val().Unix()
	h := all.Val()
	get := func(f string, i int64) int64 {
		v, _ := strconv.ParseInt(h[f+strconv.FormatInt(i, 10)], 10, 64)
		return v
	}
	out := make([]Second, 0, n)
	for sec := now - int64(n) + 1; sec <= now; sec++ {
		s := Second{At: time.Unix(sec, 0).UTC()}
		if i := sec % UsageSeconds; get("t", i) == sec {
			s.Interactive, s.Batch, s.Exceeded = get("i", i), get("b", i), get("x", i)
		}
		out = append(out, s)
	}
	return out, nil
}

// Budget describes one limiter (an account, action and endpoint's budget) to
// operators. Workers announce theirs with Announce; GET /v1/budgets lists them.
type Budget struct {
	// Key is the limiter's Redis key (Config.Key); never shown, since it holds the
	// whole account.
	Key string `json:"-"`
	// Account names the account, masked (e.g. "AKID…3f9a"): never a whole SecretId.
	Account string `json:"Account"`
	// Action and Endpoint are the upstream action and endpoint the budget paces.
	Action   string `json:"Action"`
	Endpoint string `json:"Endpoint"`
	// Rate is the budget's limit, in calls per second (Config.Rate).
	Rate float64 `json:"Rate"`
}

// Announce records b in keys.Budgets, so that operators find it (one write, at a
// worker's start).
func Announce(ctx context.Context, rdb redis.Cmdable, b Budget) error {
	v, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("ratelimit: announce budget: %w", err)
	}
	if err := rdb.HSet(ctx, keys.Budgets, b.Key, v).Err(); err != nil {
		return fmt.Errorf("ratelimit: announce budget: %w", err)
	}
	return nil
}

// Budgets returns every announced budget, ordered by account, action and endpoint.
func Budgets(ctx context.Context, rdb redis.Cmdable) ([]Budget, error) {
	all, err := rdb.HGetAll(ctx, keys.Budgets).Result()
	if err != nil {
		return nil, fmt.Errorf("ratelimit: list budgets: %w", err)
	}
	out := make([]Budget, 0, len(all))
	for k, v := range all {
		var b Budget
		if json.Unmarshal([]byte(v), &b) != nil {
			continue // written by another version: skip rather than fail the list
		}
		b.Key = k
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Budget) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Action, b.Action), cmp.Compare(a.Endpoint, b.Endpoint))
	})
	return out, nil
}

// MaskAccount shows the first four and last four characters of a SecretId
// ("AKID…3f9a"), and nothing of one of twelve characters or fewer.
func MaskAccount(account string) string {
	r := []rune(account)
	if len(r) <= 12 {
		return "…"
	}
	return string(r[:4]) + "…" + string(r[len(r)-4:])
}
