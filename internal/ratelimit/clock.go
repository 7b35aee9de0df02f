package ratelimit

import (
	"sync"
	"time"
)

// driftPerSecond is how much the uncertainty of a clock sample grows per second of its
// age: 500 µs/s covers the fastest slew NTP applies (500 ppm) to either clock.
const driftPerSecond = 500 * time.Microsecond

// clock maps slots, on Redis's clock, onto this process's clock. Each script answer is a
// sample: Redis read its clock somewhere between the call's send and its answer, so the
// offset between the clocks lies within half the round trip of the midpoint's. clock
// keeps the sample with the smallest uncertainty (its half round trip, grown by its age
// at driftPerSecond), so one answer that comes back late (a busy CPU, a slow network)
// does not move where later slots land; a sample that contradicts the kept one (their
// ranges do not overlap) means a clock stepped, and replaces it.
//
// Times are kept as offsets from a local anchor with a monotonic reading, so a step of
// this machine's wall clock does not move a slot either.
type clock struct {
	anchor time.Time // local, monotonic

	mu   sync.Mutex
	have bool
	off  time.Duration // Redis time (since the epoch) − local time since anchor
	unc  time.Duration // half the kept sample's round trip
	at   time.Duration // local time since anchor of the kept sample
}

func newClock() *clock { return &clock{anchor: time.Now()} }

// note records the sample of one script answer: sent and recv on the local clock
// around the call, redisUS the Redis time (µs) the script read.
func (c *clock) note(sent, recv time.Time, redisUS int64) {
	s, r := sent.Sub(c.anchor), recv.Sub(c.anchor)
	if r < s {
		return
	}
	mid, unc := s+(r-s)/2, (r-s)/2
	off := time.Duration(redisUS)*time.Microsecond - mid
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have {
		cur := c.unc + time.Duration(float64(abs(mid-c.at))*float64(driftPerSecond)/float64(time.Second))
		if abs(off-c.off) <= unc+cur && unc > cur {
			return // consistent with the kept sample, which knows better
		}
	}
	c.have, c.off, c.unc, c.at = true, off, unc, mid
}

// local returns where the Redis time redisUS (µs) falls on the local clock, with a
// monotonic reading. Before any sample it returns the zero time.
func (c *clock) local(redisUS int64) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.have {
		return time.Time{}
	}
	return c.anchor.Add(time.Duration(redisUS)*time.Microsecond - c.off)
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
