package jwks

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ttl is how long a response with header h may be used: its Cache-Control
// max-age minus its Age, clamped to [minTTL, maxTTL].
//
// A response without a usable max-age (absent, malformed, or with no-cache /
// no-store) gets minTTL, not maxTTL: without the server's word we cannot know
// how soon a key will rotate, and a short TTL picks a rotation up quickly
// while the floor still bounds the fetch rate.
func ttl(h http.Header, minTTL, maxTTL time.Duration) time.Duration {
	secs, ok := maxAge(h)
	if !ok {
		return minTTL
	}
	if age, ok := ageSeconds(h); ok {
		secs -= age // the response already spent this long in a cache
	}
	var d time.Duration
	switch {
	case secs <= 0:
		d = 0
	case secs >= int64(maxTTL/time.Second):
		d = maxTTL // also avoids overflowing the multiplication below
	default:
		d = time.Duration(secs) * time.Second
	}
	return min(max(d, minTTL), maxTTL)
}

// maxAge returns the max-age directive of h's Cache-Control in seconds.
// ok is false when there is none, when it is malformed, or when no-cache or
// no-store says the response must not be reused without revalidation. When
// max-age appears more than once the smallest wins, the safe choice for
// picking up rotations.
func maxAge(h http.Header) (secs int64, ok bool) {
	secs = -1
	for _, line := range h.Values("Cache-Control") {
		for directive := range strings.SplitSeq(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-cache", "no-store":
				return 0, false
			case "max-age":
				n, ok := parseSeconds(strings.Trim(strings.TrimSpace(value), `"`))
				if ok && (secs < 0 || n < secs) {
					secs = n
				}
			}
		}
	}
	return secs, secs >= 0
}

// ageSeconds returns the Age header (RFC 9111 §5.1) in seconds.
func ageSeconds(h http.Header) (int64, bool) {
	return parseSeconds(strings.TrimSpace(h.Get("Age")))
}

// parseSeconds parses a non-negative delta-seconds value; values too large
// for int64 saturate, as RFC 9111 §1.2.2 asks.
func parseSeconds(s string) (int64, bool) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return math.MaxInt64, true
	}
	return n, err == nil
}
