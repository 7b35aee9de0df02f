package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	ctx := context.Background()
	t.Run("counts grants by slot second and penalties", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{Rate: 20})
		for range 3 {
			if r := mustReserve(t, l, Interactive); !r.ok {
				t.Fatal("interactive refused")
			}
		}
		if err := l.Penalize(ctx, Reservation{}); err != nil {
			t.Fatal(err)
		}
		b.advance(2 * time.Second)
		if r := mustReserve(t, l, Batch); !r.ok {
			t.Fatal("batch refused")
		}
		got, err := ReadUsage(ctx, b.rdb, testKey, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 || !got[4].At.Equal(time.Unix(b.now().Unix(), 0)) {
			t.Fatalf("seconds %+v", got)
		}
		var in, ba, ex int64
		for _, s := range got {
			in, ba, ex = in+s.Interactive, ba+s.Batch, ex+s.Exceeded
		}
		if in != 3 || ba != 1 || ex != 1 || got[4].Batch != 1 {
			t.Fatalf("interactive %d batch %d exceeded %d in %+v", in, ba, ex, got)
		}
	})
	t.Run("a ring slot of an older second reads as zero", func(t *testing.T) {
		b := setup(t)
		l := mustNew(t, b.rdb, Config{})
		mustReserve(t, l, Interactive)
		b.advance(UsageSeconds * time.Second)
		got, err := ReadUsage(ctx, b.rdb, testKey, UsageSeconds)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.Interactive != 0 {
				t.Fatalf("old count shows at %v: %+v", s.At, s)
			}
		}
	})
	t.Run("budgets announced are listed", func(t *testing.T) {
		b := setup(t)
		for _, bu := range []Budget{{Key: "k2", Account: "B", Rate: 5}, {Key: "k1", Account: "A", Rate: 20}} {
			if err := Announce(ctx, b.rdb, bu); err != nil {
				t.Fatal(err)
			}
		}
		got, err := Budgets(ctx, b.rdb)
		if err != nil || len(got) != 2 || got[0].Key != "k1" || got[1].Rate != 5 {
			t.Fatalf("Budgets = %+v, %v", got, err)
		}
	})
}

func TestMaskAccount(t *testing.T) {
	for in, want := range map[string]string{"AKIDabcdefgh12343f9a": "AKID…3f9a", "short": "…", "": "…"} {
		if got := MaskAccount(in); got != want {
			t.Errorf("MaskAccount(%q) = %q, want %q", in, got, want)
		}
	}
}
