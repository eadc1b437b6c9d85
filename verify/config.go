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

// maxSkew bounds Config.Tolerance and Config.Leeway: a delivery or token
// further from the clock than an hour is a replay or a broken clock, and
// accepting it would keep every captured delivery replayable that long.
const maxSkew = time.Hour

// minRefetchInterval bounds Config.JWKSRefetchInterval from below: it is
// what keeps a flood of forged deliveries from turning into a flood of key
// fetches.
const minRefetchInterval = time.Second

// publicTestSecret is the secret of the Standard Webhooks example, which
// every Standard Webhooks library and its documentation carries: anyone
// can sign with it, so New refuses it.
const publicTestSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// Config configures a Verifier. The zero value is not usable: set Secrets or
// Keyring for static webhooks, JWKSURL for dynamic ones, or both.
type Config struct {
	// Secrets are static webhook signing secrets, "whsec_" followed by
	// base64, or bare base64, padded or not. Hold several during a rotation.
	Secrets []string
	// Keyring holds secrets with an optional expiry, for a rotation whose
	// old secret stops verifying at a known time (Gemini's
	// revoke_previous_secrets_after_h24). It adds to Secrets. Both are
	// the starting keyring: Verifier.SetKeyring replaces them live.
	Keyring []Secret
	// Tolerance is the accepted distance between webhook-timestamp and Now,
	// past or future. 0 means DefaultTolerance; at most 1 hour.
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// JWKSURL enables dynamic webhooks: keys are fetched from it (use
	// GeminiJWKSURL). It must be https, or http to a loopback address, and
	// a port, if given, must be 1 to 65535. Empty means dynamic deliveries
	// are rejected.
	JWKSURL string
	// Audience enables JWT deliveries, the form Google's documentation
	// describes: it must be among the token's aud, so set it to the
	// audience Gemini uses for this endpoint. Empty means JWT deliveries
	// are rejected (ErrSchemeNotConfigured); v1a deliveries, the form live
	// dynamic webhooks carry, need no audience.
	Audience string
	// Issuer, when set, must equal the iss claim of JWT deliveries. It is
	// required with Audience unless JWKSURL is GeminiJWKSURL (or an http
	// loopback URL, for tests): any other key set may be one, like
	// Google's OAuth certificates, whose keys sign tokens that anyone can
	// obtain for any audience.
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
	// turn into a flood of fetches. 0 means 30 seconds; at least 1 second.
	JWKSRefetchInterval time.Duration
	// Leeway is the clock skew allowed on a JWT's exp (and nbf). 0 means 30
	// seconds; at most 1 hour.
	Leeway time.Duration

	// allowTestVector lets this package's tests use publicTestSecret,
	// the key of the Standard Webhooks test vector.
	allowTestVector bool
}

// Secret is a static signing secret with an optional expiry.
type Secret struct {
	// Value is "whsec_" followed by base64, or bare base64.
	Value string
	// Expires, when non-zero, is the instant from which this secret no
	// longer verifies.
	Expires time.Time
}
