package jwks

import (
	"fmt"

	"github.com/genaihook/genaihook/internal/httpsurl"
)

// ValidateURL reports whether u is acceptable as a JWKS URL, with an error
// saying why not. Keys fetched over plain http could be replaced by anyone on
// the path, which would let them sign deliveries, so https is required; http
// is allowed only to a loopback host (127.0.0.0/8, ::1, "localhost"), where
// tests and local fakes run. The URL must have a host, and a port, if it
// names one, must be 1 to 65535.
func ValidateURL(u string) error {
	if err := httpsurl.Check(u); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	return nil
}
