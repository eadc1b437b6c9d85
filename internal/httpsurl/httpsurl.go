// Package httpsurl checks URLs that must not travel in clear: the JWKS that
// verifies deliveries, and the webhook URL Gemini is asked to deliver to.
package httpsurl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Check returns nil when u is an absolute https URL with a host (and, if it
// names a port, one from 1 to 65535), or such an http URL whose host is a
// loopback address (127.0.0.0/8, ::1, "localhost"), where tests and local
// fakes run; otherwise an error saying why, in words that never quote a
// password in u.
func Check(u string) error {
	if u == "" {
		return errors.New("URL is empty")
	}
	p, err := url.Parse(u)
	if err != nil {
		// *url.Error quotes the URL, password included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL: %w", err)
	}
	if p.Hostname() == "" {
		return fmt.Errorf("URL %s has no host", p.Redacted())
	}
	// net/url accepts any digits as a port; one no connection can use would
	// only fail at the first request.
	if port := p.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("URL %s: port must be 1 to 65535", p.Redacted())
		}
	}
	switch p.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(p.Hostname()) {
			return nil
		}
		return fmt.Errorf("URL %s: plain http is only allowed to a loopback host (127.0.0.0/8, ::1, localhost); use https", p.Redacted())
	default:
		return fmt.Errorf("URL scheme %q not allowed; use https", p.Scheme)
	}
}

// IsLoopback reports whether host (without port or brackets) names the
// local machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}
