package verify

import "time"

// maxTimestampDigits bounds webhook-timestamp: 18 decimal digits always fit
// in an int64, and no real Unix time comes close.
const maxTimestampDigits = 18

// parseTimestamp parses webhook-timestamp: 1 to 18 ASCII digits, integer
// Unix seconds. Signs, spaces, fractions and exponents are rejected.
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxTimestampDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// checkTimestamp parses webhook-timestamp and checks it lies within the
// tolerance of now, in either direction (Standard Webhooks 1.0). A replay
// of an old delivery fails as too old; a timestamp in the future, which a
// sender with a fast clock or an attacker storing signatures for later
// would produce, fails as too new. The bounds are inclusive and exact to
// the nanosecond of now.
//
// It computes in whole seconds rather than with time.Time.Sub, which
// guards against overflow with an Add and an Equal per call, a visible
// share of a whole HMAC verification: the seconds are compared first, with
// a margin that no in-range timestamp reaches, so that the nanosecond
// difference computed next cannot overflow.
func checkTimestamp(s string, now time.Time, tolerance time.Duration) (time.Time, *Error) {
	n, ok := parseTimestamp(s)
	if !ok {
		return time.Time{}, fail(ErrMalformedTimestamp, "webhook-timestamp is not integer Unix seconds")
	}
	// n is below 10^18 and margin below 10^10, so neither sum overflows.
	sec, margin := now.Unix(), int64(tolerance/time.Second)+1
	tooOld, tooNew := sec > n+margin, sec < n-margin
	if !tooOld && !tooNew {
		// |sec-n| <= margin, and New bounds the tolerance to maxSkew:
		// age is a few hours at most.
		age := time.Duration(sec-n)*time.Second + time.Duration(now.Nanosecond())
		tooOld, tooNew = age > tolerance, -age > tolerance
	}
	switch {
	case tooOld:
		return time.Time{}, fail(ErrTooOld, "webhook-timestamp is more than "+tolerance.String()+" before the verifier's clock")
	case tooNew:
		return time.Time{}, fail(ErrTooNew, "webhook-timestamp is more than "+tolerance.String()+" after the verifier's clock")
	}
	return time.Unix(n, 0), nil
}
