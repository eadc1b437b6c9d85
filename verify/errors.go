package verify

import "errors"

// Sentinel errors. Every error returned by [New], [Sign],
// [Verifier.SetKeyring] and [Verifier.Verify] is an [*Error] that wraps exactly one of these, so
// callers branch with errors.Is and log the Reason. The package
// documentation says which HTTP status a receiver answers for each.
var (
	// ErrMissingHeader: webhook-id, webhook-timestamp or webhook-signature is
	// absent or empty.
	ErrMissingHeader = errors.New("verify: missing header")
	// ErrMalformedHeader: the signature header is not a list of
	// "version,base64" entries, a JWT is not a well-formed compact JWS or
	// has a claim of the wrong type, or webhook-id is too long.
	ErrMalformedHeader = errors.New("verify: malformed header")
	// ErrMalformedTimestamp: webhook-timestamp is not integer Unix seconds.
	ErrMalformedTimestamp = errors.New("verify: malformed timestamp")
	// ErrTooOld: the timestamp is further in the past than the tolerance.
	ErrTooOld = errors.New("verify: timestamp too old")
	// ErrTooNew: the timestamp is further in the future than the tolerance.
	ErrTooNew = errors.New("verify: timestamp too new")
	// ErrNoMatchingSignature: no signature entry matched any configured key.
	ErrNoMatchingSignature = errors.New("verify: no matching signature")
	// ErrUnknownKey: a JWT names a kid that the key set does not hold, even
	// after a refetch.
	ErrUnknownKey = errors.New("verify: unknown key")
	// ErrBadAlgorithm: a JWT uses an algorithm other than RS256.
	ErrBadAlgorithm = errors.New("verify: bad algorithm")
	// ErrTokenExpired: a JWT's exp is in the past (beyond the leeway), or absent.
	ErrTokenExpired = errors.New("verify: token expired")
	// ErrWrongAudience: a JWT's aud does not contain the configured
	// audience; the reason quotes the token's aud.
	ErrWrongAudience = errors.New("verify: wrong audience")
	// ErrWrongIssuer: a JWT's iss differs from the configured issuer.
	ErrWrongIssuer = errors.New("verify: wrong issuer")
	// ErrJWKSUnavailable: Verify could not decide for want of keys: Google's
	// public keys are needed and could not be obtained (none are cached, or
	// none cached verifies and a refetch failed, or none cached verifies,
	// the set predates the delivery and the rate limit defers the
	// refetch), or they could not all be checked (the MaxEd25519Checks
	// budget ran out with keys untried). It is transient: answer 503 so
	// that Gemini retries.
	ErrJWKSUnavailable = errors.New("verify: JWKS unavailable")
	// ErrSchemeNotConfigured: the delivery uses a signature scheme this
	// verifier was not configured for (a v1a or JWT delivery at a static-only
	// verifier, a v1 delivery at a dynamic-only one, a JWT delivery without
	// Config.Audience).
	ErrSchemeNotConfigured = errors.New("verify: signature scheme not configured")
	// ErrBadConfig: the Config given to New is unusable (no scheme, an empty
	// or undecodable secret, one shorter than MinSecretLen bytes, all zero
	// bytes or the public Standard Webhooks example, only expired secrets
	// and no JWKSURL, a JWKS URL that is neither https nor http to a
	// loopback host or has a port outside 1 to 65535, Audience with a
	// JWKSURL other than GeminiJWKSURL and no telling Issuer, a negative
	// duration, Tolerance or Leeway above 1 hour, JWKSRefetchInterval below
	// 1 second, JWKSMinTTL above JWKSMaxTTL), or a secret given to Sign
	// is, or a keyring given to SetKeyring is (a bad secret, or none live
	// without a JWKSURL).
	ErrBadConfig = errors.New("verify: bad configuration")
)

// Error is the one error type of this package. Err is one of the sentinels
// above; Reason says what exactly was wrong, in words safe to log: it never
// holds a secret, a signature or a body.
type Error struct {
	Err    error
	Reason string
}

// Error returns the sentinel's message followed by the reason.
func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Reason
}

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

func fail(sentinel error, reason string) *Error {
	return &Error{Err: sentinel, Reason: reason}
}
