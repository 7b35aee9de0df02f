package ratelimit

import (
	"testing"
	"time"
)

func TestClockMapsRedisTime(t *testing.T) {
	const redis0 = int64(1_800_000_000_000_000) // µs: Redis's clock at the anchor (offset 0)
	at := func(c *clock, d time.Duration) time.Time { return c.anchor.Add(d) }
	// sample is one script answer: sent at local s, answered after rtt, Redis having
	// read its clock at local s+rtt/2+skew (skew: where in the round trip it read it).
	type sample struct {
		s, rtt, skew time.Duration
		step         time.Duration // Redis's clock stepped by this much before the sample
	}
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []sample
		// want: where Redis time redis0+probe lands, relative to anchor+probe.
		probe, wantErr time.Duration
	}{
		{"one fast sample", []sample{{s: 0, rtt: 200 * time.Microsecond}}, 2 * time.Second, 0},
		{"a late answer does not move slots", []sample{
			{s: 0, rtt: 200 * time.Microsecond},
			{s: 10 * ms, rtt: 20 * ms, skew: -9 * ms}, // Redis answered at once, the reply sat 19 ms
		}, 2 * time.Second, 0},
		{"a faster sample refines", []sample{
			{s: 0, rtt: 4 * ms, skew: 1 * ms},
			{s: 5 * ms, rtt: 100 * time.Microsecond},
		}, time.Second, 0},
		{"an aged sample gives way", []sample{
			{s: 0, rtt: 100 * time.Microsecond},
			{s: 10 * time.Second, rtt: 2 * ms, skew: 500 * time.Microsecond}, // the old one is ±5 ms by now
		}, time.Second, -500 * time.Microsecond},
		{"a step of Redis's clock replaces the kept sample", []sample{
			{s: 0, rtt: 100 * time.Microsecond},
			{s: 50 * ms, rtt: 1 * ms, step: -3 * time.Second},
		}, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			var step time.Duration
			for _, s := range tt.samples {
				step += s.step
				read := s.s + s.rtt/2 + s.skew // local time at which Redis read its clock
				c.note(at(c, s.s), at(c, s.s+s.rtt), redis0+(read-step).Microseconds())
			}
			// Redis time redis0+probe-step happens at local probe when the clocks are as
			// described; the mapping may be off by wantErr (the skew it could not see).
			got := c.local(redis0 + (tt.probe - step).Microseconds()).Sub(at(c, tt.probe))
			if d := got - tt.wantErr; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("Redis time mapped %v from where it happens, want %v", got, tt.wantErr)
			}
		})
	}
	if !newClock().local(redis0).IsZero() {
		t.Error("a clock without samples mapped a time")
	}
}
