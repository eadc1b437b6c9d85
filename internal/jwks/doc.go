// Package jwks fetches and caches a JSON Web Key Set (RFC 7517) for checking
// Gemini dynamic webhook signatures: Ed25519 keys verify Standard Webhooks
// `v1a` entries, RSA keys verify RS256 JWTs.
//
// The cache sits behind a public webhook endpoint, so anyone on the internet
// can make it work. It is built so that forged traffic cannot turn into
// traffic towards the key server, a key server outage cannot turn into
// rejected deliveries, and a slow key server cannot hold a caller beyond its
// own context:
//
//   - Keys are kept for the response's Cache-Control max-age, clamped to
//     [Config.MinTTL, Config.MaxTTL].
//   - Forced refetches (Refresh, after a signature no cached key verifies)
//     and retries after a failed fetch happen at most once per
//     Config.RefetchInterval, measured from the last attempt.
//   - Concurrent callers share one in-flight fetch. It runs in a goroutine
//     of its own, started by the call that needs it (never by New), and
//     is over for the cache within a 10 s timeout, even when the HTTP
//     client ignores the request's context; each caller waits for it or
//     for its own context, whichever comes first.
//   - While a fetch runs, and when it fails, the last good set keeps being
//     served: Keys returns an expired set at once rather than wait.
//   - The response body is capped at Config.MaxBytes; status must be 200.
//     At most MaxEd25519Keys Ed25519 keys and MaxRSAKeys RSA keys are kept
//     from a document, the first ones in document order.
//
// Typical use, from package verify:
//
//	c, err := jwks.New(jwks.Config{URL: url})
//	set, err := c.Keys(ctx)
//	// ... no key in set verified the signature:
//	set, err = c.Refresh(ctx) // err != nil: the keys could not be brought up to date
package jwks
