package waittest_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/waittest"
)

func TestFor(t *testing.T) {
	t.Run("holds", func(t *testing.T) {
		var n atomic.Int32
		err := waittest.For(time.Second, "three polls", func() (bool, string) { return n.Add(1) >= 3, "" })
		if err != nil || n.Load() != 3 {
			t.Fatalf("err %v after %d polls, want nil after 3", err, n.Load())
		}
	})
	t.Run("times out with the last reason", func(t *testing.T) {
		err := waittest.For(30*time.Millisecond, "never", func() (bool, string) { return false, "still no" })
		var te *waittest.TimeoutError
		if !errors.As(err, &te) || te.What != "never" || te.Reason != "still no" {
			t.Fatalf("err = %v, want a TimeoutError naming what and the reason", err)
		}
	})
}

func TestRecv(t *testing.T) {
	c := make(chan int, 1)
	c <- 7
	if got := waittest.Recv(t, time.Second, "a value", c); got != 7 {
		t.Fatalf("got %d, want 7", got)
	}
}
