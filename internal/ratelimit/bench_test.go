package ratelimit

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/redistest"
)

// grantsSeen keeps the parallel benchmark's work observable.
var grantsSeen atomic.Int64

// BenchmarkReserve measures one reservation: a script round trip to a local
// redis-server (EVALSHA). Rate is high enough that every reservation is granted.
func BenchmarkReserve(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	ctx := context.Background()
	l, err := New(s.Client(b), Config{Key: testKey, Rate: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			r, err := l.reserve(ctx, Interactive)
			if err != nil || !r.ok {
				b.Fatalf("reserve: %+v, %v", r, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, err := l.reserve(ctx, Interactive)
				if err != nil || !r.ok {
					b.Errorf("reserve: %+v, %v", r, err)
					return
				}
				grantsSeen.Add(1)
			}
		})
	})
}

// BenchmarkPacing measures the share of the rate that 3 processes (24 waiters) flooding
// one limiter actually get, after a 3s warm-up that lets the observed spread settle (interactive
// reservations made before it settled reach up to 1.2s ahead). The
// calls are "answered" at their slot plus a simulated upstream latency: steady (20ms) or
// jittery (30±20ms, a spread of about 40ms). It reports budget-%, the grants per second
// over the last 3 seconds as a percentage of Rate. One iteration takes 6s.
func BenchmarkPacing(b *testing.B) {
	cases := []struct {
		name    string
		lane    Lane
		latency func() time.Duration
	}{
		{"interactive/steady", Interactive, func() time.Duration { return 20 * time.Millisecond }},
		{"batch/steady", Batch, func() time.Duration { return 20 * time.Millisecond }},
		{"interactive/jitter30±20ms", Interactive, func() time.Duration {
			return 10*time.Millisecond + rand.N(40*time.Millisecond)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(100*measurePacing(b, c.lane, c.latency), "budget-%")
			}
		})
	}
}

func measurePacing(b *testing.B, lane Lane, latency func() time.Duration) float64 {
	const warmUp, measure = 3 * time.Second, 3 * time.Second
	s := redistest.Start(b, redistest.Options{})
	var limiters []*Limiter
	for range 3 {
		l, err := New(s.Client(b), Config{Key: testKey})
		if err != nil {
			b.Fatal(err)
		}
		limiters = append(limiters, l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmUp+measure)
	defer cancel()
	var mu sync.Mutex
	var slots []time.Time
	var wg sync.WaitGroup
	for _, l := range limiters {
		for range 8 {
			wg.Go(func() {
				for {
					res, err := l.Wait(ctx, lane)
					if err != nil {
						return
					}
					l.Observe(res, res.Start.Add(latency()))
					mu.Lock()
					slots = append(slots, res.Slot)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(slots, time.Time.Compare)
	from := slots[0].Add(warmUp)
	i := slices.IndexFunc(slots, func(t time.Time) bool { return !t.Before(from) })
	n := len(slots) - 1 - i
	span := slots[len(slots)-1].Sub(slots[i]).Seconds()
	st := limiters[0].Stats()
	b.Logf("%s: %d grants in the last %.2fs, spread %v, interval %v", lane, n, span, st.Spread, st.Interval)
	return float64(n) / span / 20
}
