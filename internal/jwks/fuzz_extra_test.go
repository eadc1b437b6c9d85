package jwks

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzCacheControl feeds arbitrary Cache-Control and Age headers, as a key
// endpoint (or a proxy in front of it) may send them, to ttl. It must never
// panic, must stay within [minTTL, maxTTL] whatever the values (huge,
// negative, repeated, quoted), and must give minTTL to a response that
// says no-cache or no-store.
func FuzzCacheControl(f *testing.F) {
	for _, s := range [][2]string{
		{"public, max-age=300", ""},
		{"max-age=300", "100"},
		{"max-age=300", "400"},
		{`max-age="60", max-age=10`, ""},
		{"max-age=99999999999999999999999", "99999999999999999999999"},
		{"max-age=-1", ""},
		{"max-age=+5", "-5"},
		{"no-store, max-age=86400", ""},
		{"NO-CACHE", ""},
		{"max-age", ""},
		{"", "3"},
	} {
		f.Add(s[0], s[1])
	}
	bounds := [][2]time.Duration{
		{5 * time.Minute, 24 * time.Hour},
		{time.Second, time.Second},
		{0, time.Hour},
		{0, 0},
	}
	f.Fuzz(func(t *testing.T, cc, age string) {
		h := http.Header{}
		for v := range strings.SplitSeq(cc, "\n") { // several header lines
			h.Add("Cache-Control", v)
		}
		if age != "" {
			h.Set("Age", age)
		}
		floor := hasDirective(h, "no-store") || hasDirective(h, "no-cache")
		for _, b := range bounds {
			d := ttl(h, b[0], b[1])
			if d < b[0] || d > b[1] {
				t.Fatalf("ttl(Cache-Control %q, Age %q, %v, %v) = %v, outside the bounds", cc, age, b[0], b[1], d)
			}
			if floor && d != b[0] {
				t.Fatalf("ttl(Cache-Control %q) = %v, want the floor %v", cc, d, b[0])
			}
		}
	})
}

// hasDirective reports whether a Cache-Control line of h holds the
// directive name, parsed independently of the code under test.
func hasDirective(h http.Header, name string) bool {
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			n, _, _ := strings.Cut(d, "=")
			if strings.EqualFold(strings.TrimSpace(n), name) {
				return true
			}
		}
	}
	return false
}
