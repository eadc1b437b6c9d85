package verify

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// refCheckTimestamp is the tolerance check written with time.Time.Sub, as
// Standard Webhooks states it: the reference checkTimestamp must agree
// with.
func refCheckTimestamp(n int64, now time.Time, tolerance time.Duration) error {
	ts := time.Unix(n, 0)
	switch {
	case now.Sub(ts) > tolerance:
		return ErrTooOld
	case ts.Sub(now) > tolerance:
		return ErrTooNew
	}
	return nil
}

// TestCheckTimestampMatchesSub checks the seconds arithmetic of
// checkTimestamp against refCheckTimestamp at and around every bound, with
// clocks that have nanoseconds, and on random timestamps far from the clock.
func TestCheckTimestampMatchesSub(t *testing.T) {
	clocks := []time.Time{
		vecTime,
		vecTime.Add(time.Nanosecond),
		vecTime.Add(999999999 * time.Nanosecond),
		vecTime.Add(-time.Nanosecond),
		time.Unix(0, 0),
		time.Unix(-1, 500),
		time.Time{},
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	tolerances := []time.Duration{DefaultTolerance, time.Second, time.Nanosecond, 1500 * time.Millisecond, maxSkew}
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(n int64, now time.Time, tol time.Duration) {
		t.Helper()
		want := refCheckTimestamp(n, now, tol)
		ts, err := checkTimestamp(strconv.FormatInt(n, 10), now, tol)
		var got error
		if err != nil {
			got = err.Err
		}
		if !errors.Is(got, want) && !(got == nil && want == nil) {
			t.Fatalf("checkTimestamp(%d, %v, %v) = %v, want %v", n, now, tol, got, want)
		}
		if got == nil && ts.Unix() != n {
			t.Fatalf("checkTimestamp(%d) = %v, want Unix %d", n, ts, n)
		}
	}
	for _, now := range clocks {
		for _, tol := range tolerances {
			sec := now.Unix()
			for _, base := range []int64{sec, sec - int64(tol/time.Second), sec + int64(tol/time.Second)} {
				for d := int64(-3); d <= 3; d++ {
					if n := base + d; n >= 0 && n < 1e18 {
						check(n, now, tol)
					}
				}
			}
			for range 200 {
				check(rng.Int64N(1e18), now, tol)
				if n := sec + rng.Int64N(4*int64(maxSkew/time.Second)) - 2*int64(maxSkew/time.Second); n >= 0 {
					check(n, now, tol)
				}
			}
		}
	}
}
