package verify

import (
	"net/http"
	"time"
)

// GeminiJWKSURL is where Google publishes the public keys that sign dynamic
// webhook deliveries (Ed25519 keys for v1a signatures, RSA keys for JWTs).
const GeminiJWKSURL = "https://generativelanguage.googleapis.com/.well-known/jwks.json"

// DefaultTolerance is how far a delivery's webhook-timestamp may lie from
// the verifier's clock, in either direction, when Config.Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// Config configures a Verifier. The zero value is not usable: set Secrets or
// Keyring for static webhooks, JWKSURL for dynamic ones, or both.
type Config struct {
	// Secrets are static webhook signing secrets, "whsec_" followed by
	// base64, or bare base64, padded or not. Hold several during a rotation.
	Secrets []string
	// Keyring holds secrets with an optional expiry, for a rotation whose
	// old secret stops verifying at a known time (Gemini's
	// revoke_previous_secrets_after_h24). It adds to Secrets.
	Keyring []Secret
	// Tolerance is the accepted distance between webhook-timestamp and Now,
	// past or future. 0 means DefaultTolerance.
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// JWKSURL enables dynamic webhooks: keys are fetched from it (use
	// GeminiJWKSURL). It must be https, or http to a loopback address. Empty
	// means dynamic deliveries are rejected.
	JWKSURL string
	// Audience enables JWT deliveries, the form Google's documentation
	// describes: it must be among the token's aud, so set it to the
	// audience Gemini uses for this endpoint. Empty means JWT deliveries
	// are rejected (ErrSchemeNotConfigured); v1a deliveries, the form live
	// dynamic webhooks carry, need no audience.
	Audience string
	// Issuer, when set, must equal the iss claim of JWT deliveries.
	Issuer string
	// HTTPClient fetches the JWKS; nil means a client with a 10 s timeout
	// that follows only redirects to https (or http on loopback) URLs.
	HTTPClient *http.Client
	// JWKSMinTTL and JWKSMaxTTL bound how long fetched keys are cached,
	// whatever the endpoint's Cache-Control says. 0 means 5 minutes and 24
	// hours.
	JWKSMinTTL, JWKSMaxTTL time.Duration
	// JWKSRefetchInterval is the least time between two refetches forced by
	// a signature no cached key verifies, so that forged deliveries cannot
	// turn into a flood of fetches. 0 means 30 seconds.
	JWKSRefetchInterval time.Duration
	// Leeway is the clock skew allowed on a JWT's exp (and nbf). 0 means 30
	// seconds.
	Leeway time.Duration
}

// Secret is a static signing secret with an optional expiry.
type Secret struct {
	// Value is "whsec_" followed by base64, or bare base64.
	Value string
	// Expires, when non-zero, is the instant from which this secret no
	// longer verifies.
	Expires time.Time
}
