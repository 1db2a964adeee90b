package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond every 100 ms until it holds or timeout passes, then fails the
// test with what cond last said.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen:\n%s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
