// Package verify checks that a webhook delivery really comes from Gemini,
// before anything else looks at it.
//
// Gemini sends two kinds of webhook (PROTOCOL.md §1):
//
//   - Static webhooks, registered once per project with the WebhookService
//     (client.Webhooks.Create), are signed with a shared secret ("whsec_…")
//     using Standard Webhooks HMAC-SHA256: a "v1,<base64>" entry in the
//     webhook-signature header. A receiver may hold several secrets during a
//     rotation; Config.Keyring gives each an expiry.
//   - Dynamic webhooks, requested per job with a webhook_config, are signed
//     with Google's global public keys, published as a JWKS
//     (GeminiJWKSURL).
//
// For dynamic webhooks Google's documentation and its live deliveries
// disagree (PROTOCOL.md §5). The docs describe an RS256 JWT in
// webhook-signature, its key chosen by kid and its aud checked. Live
// deliveries carry Standard Webhooks asymmetric signatures instead:
// "v1a,<base64 Ed25519 signature>" over the same
// "webhook-id.webhook-timestamp.body" content as v1, under one of several
// Ed25519 keys from the same JWKS, unnamed in the header. The Standard
// Webhooks libraries Google recommends skip v1a entries and so cannot verify
// these deliveries. This package accepts both forms behind one setting,
// Config.JWKSURL, and tells them apart by the header's shape: a value with
// no comma is a JWT, anything else a list of entries. An RSA key never
// verifies v1a and an Ed25519 key never verifies a JWT.
//
// Whatever the scheme, a Verifier accepts only what it is configured for
// (Secrets or Keyring for v1, JWKSURL for v1a and JWT), checks
// webhook-timestamp against its clock in both directions before trusting a
// signature, and reports every failure as an *Error wrapping one sentinel
// (ErrTooOld, ErrNoMatchingSignature, …) whose text never holds a secret, a
// signature or a body. The Result says which scheme and which key matched.
//
// Static use:
//
//	v, err := verify.New(verify.Config{Secrets: []string{os.Getenv("GEMINI_WEBHOOK_SECRET")}})
//	// per request, with the raw body:
//	res, err := v.Verify(r.Context(), r.Header, body) // err != nil: answer 401
//
// Dynamic use (add Secrets to accept both kinds at one endpoint):
//
//	v, err := verify.New(verify.Config{
//		JWKSURL:  verify.GeminiJWKSURL,
//		Audience: "https://example.com/gemini/webhook", // for JWT deliveries
//	})
//
// A JWT delivery is weaker than a v1 or v1a one: the token's signature
// covers its claims, not the body nor webhook-id, so anyone holding a token
// that passes the checks can attach any body to it until it expires. Keep
// Audience specific to this endpoint, set Issuer, and never point JWKSURL at
// a general-purpose key set such as Google's OAuth certificates, whose keys
// sign ID tokens that anyone can obtain for any audience: New refuses that
// URL unless Issuer is set to something other than accounts.google.com.
//
// A dynamic signature proves that Google sent a delivery, not that it was
// meant for this receiver: any Gemini customer can obtain a validly signed
// delivery and replay it here within the tolerance. Check a receiver-bound
// token in user_metadata (Result.Scheme.Dynamic() tells when) before acting
// on a dynamic delivery.
//
// New fetches nothing and starts no goroutine. The JWKS is fetched by the
// first dynamic delivery, cached for its Cache-Control max-age (bounded by
// Config.JWKSMinTTL and JWKSMaxTTL), refetched when no cached key verifies
// at most once per Config.JWKSRefetchInterval, shared by concurrent callers,
// and served stale while it is being refetched or the endpoint is down.
package verify
