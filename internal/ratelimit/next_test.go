package ratelimit

import (
	"context"
	"testing"
)

func TestNextFree(t *testing.T) {
	ctx := context.Background()
	b := setup(t)
	l := mustNew(t, b.rdb, Config{Rate: 20})

	if d, err := l.NextFree(ctx); err != nil || d != 0 {
		t.Fatalf("NextFree of an unused limiter = %v, %v; want 0, nil", d, err)
	}
	for range 3 {
		if r, err := l.reserve(ctx, Interactive); err != nil || !r.ok {
			t.Fatalf("reserve = %+v, %v; want a grant", r, err)
		}
	}
	want := 3 * l.Interval()
	for range 2 { // reading reserves nothing: the answer does not move
		d, err := l.NextFree(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := d - want; diff < -3*1000 || diff > 3*1000 { // µs rounding of three intervals
			t.Fatalf("NextFree after three grants = %v, want %v", d, want)
		}
	}
	b.advance(want)
	if d, err := l.NextFree(ctx); err != nil || d != 0 {
		t.Fatalf("NextFree once the slots passed = %v, %v; want 0, nil", d, err)
	}
}
