package bench

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

func TestParseModes(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "faceidq,redis_rate,asynq-wiki", want: []string{ModeFaceidq, ModeRedisRate, ModeAsynqWiki}},
		{in: "asynq", want: []string{ModeAsynqWiki}},
		{in: " redis_rate , faceidq", want: []string{ModeRedisRate, ModeFaceidq}},
		{in: "redis-rate", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseModes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseModes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ParseModes(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// scriptedAllower answers Allow from a script and records the calls.
type scriptedAllower struct {
	answers []*redis_rate.Result
	calls   int
}

func (a *scriptedAllower) Allow(context.Context, string, redis_rate.Limit) (*redis_rate.Result, error) {
	r := a.answers[min(a.calls, len(a.answers)-1)]
	a.calls++
	return r, nil
}

func TestWaitAllowed(t *testing.T) {
	limit := redis_rate.Limit{Rate: 20, Burst: 1, Period: time.Second}

	t.Run("asks again after RetryAfter until allowed", func(t *testing.T) {
		a := &scriptedAllower{answers: []*redis_rate.Result{
			{Allowed: 0, RetryAfter: 20 * time.Millisecond},
			{Allowed: 0, RetryAfter: 20 * time.Millisecond},
			{Allowed: 1},
		}}
		start := time.Now()
		if err := waitAllowed(context.Background(), a, "k", limit); err != nil {
			t.Fatal(err)
		}
		if a.calls != 3 {
			t.Fatalf("Allow called %d times, want 3", a.calls)
		}
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Fatalf("returned after %v, before the two RetryAfter waits (40ms)", d)
		}
	})

	t.Run("ends with ctx", func(t *testing.T) {
		a := &scriptedAllower{answers: []*redis_rate.Result{{Allowed: 0, RetryAfter: time.Hour}}}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := waitAllowed(ctx, a, "k", limit); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})

	t.Run("shared GCRA limiter in Redis spaces calls by 1/rate", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		lim := redis_rate.NewLimiter(rdb)
		ctx := context.Background()

		first, err := lim.Allow(ctx, RedisRateKey, limit)
		if err != nil {
			t.Fatal(err)
		}
		second, err := lim.Allow(ctx, RedisRateKey, limit)
		if err != nil {
			t.Fatal(err)
		}
		if first.Allowed != 1 || second.Allowed != 0 || second.RetryAfter <= 0 || second.RetryAfter > 50*time.Millisecond {
			t.Fatalf("burst 1: first %+v, second %+v; want the second refused with RetryAfter in (0, 50ms]", first, second)
		}
		start := time.Now()
		for range 3 {
			if err := waitAllowed(ctx, lim, RedisRateKey, limit); err != nil {
				t.Fatal(err)
			}
		}
		// Three more calls at 20/s after the first: at least ~3 intervals of 50ms.
		if d := time.Since(start); d < 140*time.Millisecond {
			t.Fatalf("three allowed calls after the first took %v, want >= ~150ms at 20/s", d)
		}
	})
}
