// Package jwks fetches and caches a JSON Web Key Set (RFC 7517) for checking
// Gemini dynamic webhook signatures (PROTOCOL.md §5): Ed25519 keys verify
// Standard Webhooks `v1a` entries, RSA keys verify RS256 JWTs.
//
// The cache sits behind a public webhook endpoint, so anyone on the internet
// can make it work. It is built so that forged traffic cannot turn into
// traffic towards the key server, and a key server outage cannot turn into
// rejected deliveries:
//
//   - Keys are kept for the response's Cache-Control max-age, clamped to
//     [Config.MinTTL, Config.MaxTTL].
//   - Forced refetches (Refresh, after a signature no cached key verifies)
//     and retries after a failed fetch happen at most once per
//     Config.RefetchInterval, measured from the last attempt.
//   - Concurrent callers share one in-flight fetch.
//   - While a fetch runs, and when it fails, the last good set keeps being
//     served.
//   - The response body is capped at Config.MaxBytes; status must be 200.
//   - No goroutine is started: the caller that needs a fetch performs it
//     synchronously; others wait for it (or for their own context), except
//     that Keys serves an expired set at once rather than wait.
//
// Typical use, from package verify:
//
//	c, err := jwks.New(jwks.Config{URL: url})
//	set, err := c.Keys(ctx)
//	// ... no key in set verified the signature:
//	set, err = c.Refresh(ctx)
package jwks
