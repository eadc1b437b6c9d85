// Package verify checks that a webhook delivery really comes from Gemini,
// before anything else looks at it.
//
// # Two kinds of webhook
//
// Gemini pushes a small signed JSON event to an HTTPS endpoint when a
// long-running job (a batch, a video generation, a background interaction)
// changes state. There are two ways to ask for it, signed differently:
//
//   - Static webhooks, registered once per project with the WebhookService
//     (client.Webhooks.Create in the genai SDK), are signed with a shared
//     secret ("whsec_" and base64 of 24 to 64 random bytes) using Standard
//     Webhooks 1.0 HMAC-SHA256: a "v1,<base64>" entry in the
//     webhook-signature header. A receiver holds several secrets during a
//     rotation (Config.Secrets); Config.Keyring gives each an expiry, and
//     Verifier.SetKeyring replaces them while the Verifier serves.
//   - Dynamic webhooks, requested per job with a webhook_config, are signed
//     with Google's global public keys, published as a JSON Web Key Set at
//     GeminiJWKSURL (Config.JWKSURL).
//
// # The headers
//
// Every delivery is a POST of a JSON body with three headers, whose names
// are matched case-insensitively:
//
//   - webhook-id: unique per event and the same on every retry, so the
//     key to deduplicate on;
//   - webhook-timestamp: integer Unix seconds of this attempt;
//   - webhook-signature: a space-separated list of "version,base64"
//     entries. The signed content is webhook-id, ".", webhook-timestamp (the
//     header text as sent), ".", and the raw body exactly as received, never
//     re-serialised. Entries of versions a verifier does not know are
//     skipped. Several header values are read as one list, and values that
//     a proxy split at the header's commas are joined again.
//
// A Verifier checks webhook-timestamp against its clock, in both directions
// (Config.Tolerance, 5 minutes by default), before it trusts any signature.
//
// # What the wire does not settle
//
// For dynamic webhooks Google's documentation and its live deliveries
// disagree. The documentation describes an RS256 JWT in webhook-signature,
// its key chosen by kid and its aud checked against "your configured
// audience", its claims otherwise undocumented. Live deliveries, as reported
// in python-genai issue #2927, carry Standard Webhooks asymmetric signatures
// instead: "v1a,<base64 Ed25519 signature>" over the same content as v1,
// under one of several Ed25519 keys of the same JWKS, which the header does
// not name. The Standard Webhooks libraries skip v1a entries and so cannot
// verify these deliveries. Other points no public source settles: which
// audience Gemini would put in a JWT, and where a dynamic event carries the
// job's user_metadata. This package is tolerant where the wire is
// unverified and strict where a mistake would let a forgery through: it
// accepts both dynamic forms behind one setting, tells them apart by the
// header's shape (a single value without a comma is a JWT, anything else a
// list of entries), and never lets a key verify the other scheme: an RSA
// key never verifies v1a, an Ed25519 key never a JWT.
//
// # The JWT decision
//
// A JWT delivery is accepted only when Config.Audience is set; without it
// Verify answers ErrSchemeNotConfigured, whatever the token. The reason:
// live dynamic deliveries are v1a, so the JWT form matters only if Google
// starts sending it, and that form signs only its claims, neither the body
// nor webhook-id, so anyone holding a valid token could attach any body to
// it until it expires. Such a token is only worth accepting when its aud
// names this receiver. When a token's signature verifies but its aud does
// not hold Config.Audience, the error quotes the aud it carried, so that
// the right value can be configured. For the same reason, the Result of a
// JWT delivery takes its WebhookID and Timestamp from the claims, never from
// the unsigned headers. Never point JWKSURL at a general-purpose key set
// such as Google's OAuth certificates, whose keys sign ID tokens that
// anyone can obtain for any audience: with Audience set, New refuses any
// JWKSURL other than GeminiJWKSURL (or an http loopback URL, for tests)
// unless Issuer is set, to something other than accounts.google.com.
//
// # The replay hole
//
// A dynamic signature is made with Google's global keys: it proves that
// Google sent the delivery to someone, not that it was meant for this
// receiver. Any Gemini customer can create a job whose webhook_config
// points at their own server, receive a validly signed delivery, and replay
// it here within the tolerance. (A static secret belongs to one webhook, so
// static deliveries do not have this problem.) Result.Scheme.Dynamic tells
// which deliveries need more: the webhook package's Handler closes the hole
// with its receiver binding (WithBinding), which accepts a dynamic delivery
// only when a token in the job's user_metadata, or a job this receiver
// created, ties it to this receiver, and refuses dynamic deliveries when no
// binding is configured. AcceptsDynamic tells whether a Verifier takes them
// at all.
//
// # Errors and HTTP status
//
// Every error of New, Sign, SetKeyring and Verify is an *Error wrapping one
// sentinel; its text never holds a secret, a signature or a body. A
// receiver answers:
//
//	sentinel                  meaning                                  answer
//	------------------------  ---------------------------------------  ------------------------
//	ErrMissingHeader          a required header is absent              401
//	ErrMalformedHeader        a header or token is not well formed     401
//	ErrMalformedTimestamp     webhook-timestamp is not Unix seconds    401
//	ErrTooOld, ErrTooNew      outside the tolerance (a replay?)        401
//	ErrSchemeNotConfigured    a scheme this Verifier does not accept   401
//	ErrNoMatchingSignature    no entry verifies under any key          401
//	ErrUnknownKey             a JWT names a kid the JWKS lacks         401
//	ErrBadAlgorithm           a JWT not signed with RS256              401
//	ErrTokenExpired           a JWT past its exp, or without one       401
//	ErrWrongAudience          a JWT for another audience               401
//	ErrWrongIssuer            a JWT from another issuer                401
//	ErrJWKSUnavailable        Google's keys could not be obtained,     503, Retry-After: 30
//	                          or not all checked within the budget,
//	                          or none verifies and the set predates
//	                          the delivery but cannot be refetched yet
//	ErrBadConfig              the Config (or Sign's secret) is wrong   an error at start-up
//
// ErrJWKSUnavailable means "undecided, try again": the keys could not be
// obtained, MaxEd25519Checks ran out before every key was tried, or no
// cached key verifies a v1a delivery while the set was fetched before the
// delivery was signed (the earlier of its webhook-timestamp and its
// arrival) and the refetch rate limit keeps it from being refreshed: a key
// Google published meanwhile may have signed it. A no-match against a set
// fetched at or after that moment, in particular one fetched for this very
// call, is ErrNoMatchingSignature, a 401. It
// wins over a v1 entry of the same delivery that did not verify. Gemini
// retries every non-2xx answer for 24 hours and switches off a receiver
// that keeps failing. A 401 says the delivery is a forgery and no retry
// can succeed; a 503 says a retry may. So a genuine delivery that arrives
// while the key endpoint is down or slow is answered 503, logged as an
// outage rather than an attack, with a Retry-After whose 30 seconds match
// the default of Config.JWKSRefetchInterval.
//
// # Use
//
// Static:
//
//	v, err := verify.New(verify.Config{Secrets: []string{os.Getenv("GEMINI_WEBHOOK_SECRET")}})
//	// per request, with the raw body:
//	res, err := v.Verify(r.Context(), r.Header, body)
//
// Dynamic (add Secrets to accept both kinds at one endpoint):
//
//	v, err := verify.New(verify.Config{JWKSURL: verify.GeminiJWKSURL})
//
// # Keys and cost
//
// New fetches nothing and starts no goroutine. The first dynamic delivery
// starts the first fetch of the JWKS. A fetch runs in a goroutine of its
// own and is given up after 10 seconds; the Verify call that needs it
// waits for it or for its own ctx, whichever comes first, and a fetch cut
// short for one caller goes on to serve the next. Keys are cached for the
// response's Cache-Control max-age (bounded by Config.JWKSMinTTL and
// JWKSMaxTTL), served at once while expired keys are refetched and while
// the endpoint is down, and refetched when no cached key verifies at most
// once per Config.JWKSRefetchInterval, one fetch shared by concurrent
// callers. Of a set, only the first 16 Ed25519 and the first 16 RSA keys,
// in document order, are kept.
//
// Every request to a webhook endpoint reaches Verify, so the work one
// request can cause is bounded: MaxSignatureHeaderLen, MaxSignatureEntries,
// MaxEd25519Entries and MaxWebhookIDLen bound the headers, and
// MaxEd25519Checks the Ed25519 verifications: a forged v1a delivery costs
// at most three, whatever its entries and however many keys the JWKS
// holds (three more for the keys a refetch adds, at most once per
// JWKSRefetchInterval), where a genuine one costs one (the key that
// verified last is tried first). When three checks cannot cover every
// (entry, key) pair, an unverified delivery is answered
// ErrJWKSUnavailable rather than refused, and its retry goes on with the
// keys left untried; only a delivery that verified changes the key tried
// first. The HMAC and v1a success paths allocate nothing.
package verify
