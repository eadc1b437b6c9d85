package jwks

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// ValidateURL reports whether u is acceptable as a JWKS URL, with an error
// saying why not. Keys fetched over plain http could be replaced by anyone on
// the path, which would let them sign deliveries, so https is required; http
// is allowed only to a loopback host (127.0.0.0/8, ::1, "localhost"), where
// tests and local fakes run. The URL must have a host.
func ValidateURL(u string) error {
	if u == "" {
		return errors.New("jwks: URL is empty")
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("jwks: invalid URL: %w", err)
	}
	if p.Hostname() == "" {
		return fmt.Errorf("jwks: URL %s has no host", p.Redacted())
	}
	switch p.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(p.Hostname()) {
			return nil
		}
		return fmt.Errorf("jwks: URL %s: plain http is only allowed to a loopback host (127.0.0.0/8, ::1, localhost); use https", p.Redacted())
	default:
		return fmt.Errorf("jwks: URL scheme %q not allowed; use https", p.Scheme)
	}
}

// isLoopback reports whether host (without port or brackets) names the
// local machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}
