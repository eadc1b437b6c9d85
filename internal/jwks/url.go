package jwks

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/genaihook/genaihook/internal/httpsurl"
)

// ValidateURL reports whether u is acceptable as a JWKS URL, with an error
// saying why not. Keys fetched over plain http could be replaced by anyone on
// the path, which would let them sign deliveries, so https is required; http
// is allowed only to a loopback host (127.0.0.0/8, ::1, "localhost"), where
// tests and local fakes run. The URL must have a host, and a port, if it
// names one, must be 1 to 65535: net/url accepts any digits, and a port
// no connection can use would only fail at the first dynamic delivery.
func ValidateURL(u string) error {
	if err := httpsurl.Check(u); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	p, err := url.Parse(u) // cannot fail: Check parsed it
	if err != nil {
		return fmt.Errorf("jwks: invalid URL")
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("jwks: URL %s: port must be 1 to 65535", p.Redacted())
		}
	}
	return nil
}
