// Package waittest waits for a condition with a deadline, so that no test hangs and
// none sleeps as synchronisation (river's WaitOrTimeout). For returns an error for
// programs that are not tests (cmd/faceidq-bench, cmd/faceidq-load); Until and
// UntilReason fail a test instead.
package waittest

import (
	"fmt"
	"testing"
	"time"
)

// Interval is how often a condition is polled.
const Interval = 10 * time.Millisecond

// DefaultTimeout is a generous deadline for waits on in-process work.
const DefaultTimeout = 10 * time.Second

// TimeoutError is the error of a wait whose condition did not hold in time.
type TimeoutError struct {
	What    string        // what was awaited
	Timeout time.Duration // how long it was awaited
	Reason  string        // the condition's last explanation, "" for none
}

func (e *TimeoutError) Error() string {
	s := fmt.Sprintf("timed out after %v waiting for %s", e.Timeout, e.What)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// For polls cond every Interval until it holds, or returns a *TimeoutError with
// cond's last explanation once timeout has passed. cond is always called at least once.
func For(timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return &TimeoutError{What: what, Timeout: timeout, Reason: why}
		}
		time.Sleep(Interval)
	}
}

// Until polls cond until it holds, failing tb (Fatal) after timeout.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	UntilReason(tb, timeout, what, func() (bool, string) { return cond(), "" })
}

// UntilReason is Until for a condition that explains why it does not hold yet; the
// last explanation is in the failure.
func UntilReason(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	if err := For(timeout, what, cond); err != nil {
		tb.Fatal(err)
	}
}

// Recv waits for a value on c, failing tb (Fatal) after timeout.
func Recv[T any](tb testing.TB, timeout time.Duration, what string, c <-chan T) T {
	tb.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(timeout):
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		var zero T
		return zero
	}
}
