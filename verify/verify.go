package verify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/genaihook/genaihook/internal/jwks"
	"github.com/golang-jwt/jwt/v5"
)

// defaultLeeway is the clock skew allowed on a JWT's exp and nbf when
// Config.Leeway is zero.
const defaultLeeway = 30 * time.Second

// Verifier checks that webhook deliveries come from Gemini. Create one with
// New and share it: it is safe for concurrent use, and a dynamic Verifier
// caches the JWKS across calls.
type Verifier struct {
	secrets   []*hmacKey // Config.Secrets, then Config.Keyring
	tolerance time.Duration
	now       func() time.Time

	// Dynamic webhooks; keys is nil when JWKSURL is empty.
	keys      *jwks.Cache
	parser    *jwt.Parser
	validator *jwt.Validator
	audience  string // JWT deliveries are refused when empty
	issuer    string
	leeway    time.Duration
	// ed25519Next is the index of the Ed25519 key to try after the set's
	// hint: where the last delivery that ran out of checks stopped (see
	// matchEd25519). It outlives a set, whose key order a refetch keeps.
	ed25519Next atomic.Uint32
	// onEd25519Verify, when set (by tests), is called before each Ed25519
	// verification.
	onEd25519Verify func()
}

// New returns a Verifier for cfg. It decodes every secret and validates the
// configuration now, so that a bad one fails at start-up rather than on the
// first delivery. It neither fetches the JWKS (the first dynamic delivery
// does) nor starts a goroutine.
//
// New returns an *Error wrapping ErrBadConfig if no scheme is configured (no
// Secrets, no Keyring and no JWKSURL), if a secret is empty, is not base64
// or decodes to fewer than MinSecretLen bytes (the reason names its index,
// never its value), if JWKSURL is neither https nor http to a loopback
// host, if JWKSURL is Google's OAuth certificates without an Issuer that
// tells Gemini's tokens from anyone's Google ID token, if a duration is
// negative, or if JWKSMinTTL exceeds JWKSMaxTTL.
func New(cfg Config) (*Verifier, error) {
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"Tolerance", cfg.Tolerance},
		{"Leeway", cfg.Leeway},
		{"JWKSMinTTL", cfg.JWKSMinTTL},
		{"JWKSMaxTTL", cfg.JWKSMaxTTL},
		{"JWKSRefetchInterval", cfg.JWKSRefetchInterval},
	} {
		if d.d < 0 {
			return nil, fail(ErrBadConfig, d.name+" is negative")
		}
	}
	v := &Verifier{
		tolerance: cmp.Or(cfg.Tolerance, DefaultTolerance),
		now:       cfg.Now,
		audience:  cfg.Audience,
		issuer:    cfg.Issuer,
		leeway:    cmp.Or(cfg.Leeway, defaultLeeway),
	}
	if v.now == nil {
		v.now = time.Now
	}
	for i, s := range cfg.Secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return nil, fail(ErrBadConfig, "Secrets["+strconv.Itoa(i)+"]: "+reasonOf(err))
		}
		v.secrets = append(v.secrets, newHMACKey(key, time.Time{}))
	}
	for i, s := range cfg.Keyring {
		key, err := decodeSecret(s.Value)
		if err != nil {
			return nil, fail(ErrBadConfig, "Keyring["+strconv.Itoa(i)+"]: "+reasonOf(err))
		}
		v.secrets = append(v.secrets, newHMACKey(key, s.Expires))
	}
	if cfg.JWKSURL != "" {
		if err := jwks.ValidateURL(cfg.JWKSURL); err != nil {
			return nil, fail(ErrBadConfig, "JWKSURL: "+err.Error())
		}
		if isGoogleOAuthCerts(cfg.JWKSURL) && !trustworthyIssuer(cfg.Issuer) {
			return nil, fail(ErrBadConfig, "JWKSURL: Google's OAuth certificates also sign ID tokens that anyone can obtain for any audience; "+
				"use GeminiJWKSURL, or set Issuer to the iss of Gemini's tokens (not accounts.google.com)")
		}
		c, err := jwks.New(jwks.Config{
			URL:             cfg.JWKSURL,
			HTTPClient:      cfg.HTTPClient, // nil: jwks's default, with a timeout and a safe redirect policy
			Now:             v.now,
			MinTTL:          cfg.JWKSMinTTL,
			MaxTTL:          cfg.JWKSMaxTTL,
			RefetchInterval: cfg.JWKSRefetchInterval,
		})
		if err != nil {
			return nil, fail(ErrBadConfig, "JWKS settings: "+err.Error())
		}
		v.keys = c
		v.parser = newJWTParser()
		v.validator = newJWTValidator(&cfg, v.leeway, v.now)
	}
	if len(v.secrets) == 0 && v.keys == nil {
		return nil, fail(ErrBadConfig, "no signature scheme configured: set Secrets or Keyring for static webhooks, JWKSURL for dynamic ones")
	}
	return v, nil
}

// AcceptsDynamic reports whether v verifies dynamic deliveries, those
// signed with Google's keys (Config.JWKSURL is set).
func (v *Verifier) AcceptsDynamic() bool { return v.keys != nil }

// Verify authenticates one delivery from its headers and its raw body,
// exactly as received (never a re-serialised body). Header names are matched
// case-insensitively. The scheme is chosen by the shape of the
// webhook-signature header, and only configured schemes are accepted:
//
//   - a list of "version,base64" entries: each v1 entry is checked against
//     every live secret (HMAC-SHA256, static webhooks), v1a entries against
//     the Ed25519 keys of the JWKS (dynamic webhooks, at most
//     MaxEd25519Checks verifications, the key that verified last first);
//     entries of other versions are
//     skipped. webhook-id and webhook-timestamp are required, and the
//     timestamp must lie within the tolerance of the clock, in either
//     direction, before any signature is checked. Several header values
//     are read as one list; values that only form a list once joined with
//     commas (a proxy split the header at its commas) are joined.
//   - a single value without a comma, optionally prefixed by "Bearer ": an
//     RS256 JWT (dynamic webhooks, as Google's docs describe them), accepted
//     only when Config.Audience is set, verified with the JWKS key its kid
//     names; exp is required, aud and iss are checked. webhook-id and
//     webhook-timestamp are optional and never trusted, but a webhook-id
//     that is present must respect MaxWebhookIDLen and a timestamp the
//     tolerance.
//
// On success the Result says which scheme and which key matched.
//
// Verify returns an *Error wrapping:
//   - ErrMissingHeader if webhook-signature is absent or blank, or, for a
//     list of entries, if webhook-id or webhook-timestamp is absent;
//   - ErrMalformedHeader if webhook-signature is longer than
//     MaxSignatureHeaderLen, has more than MaxSignatureEntries entries (or
//     MaxEd25519Entries v1a entries), has an entry that is not
//     "version,signature", has only v1 or v1a entries that are not base64
//     of a signature, or is not a well-formed JWT; if a JWT has a
//     registered claim of the wrong JSON type; or if webhook-id is longer
//     than MaxWebhookIDLen;
//   - ErrMalformedTimestamp if webhook-timestamp is not integer Unix seconds;
//   - ErrTooOld or ErrTooNew if it is outside the tolerance (ErrTooNew also
//     for a JWT whose nbf is in the future);
//   - ErrSchemeNotConfigured if the header holds only entries, or a JWT, of
//     a scheme this Verifier has no keys for, or a JWT when Config.Audience
//     is empty;
//   - ErrNoMatchingSignature if no entry verifies under any live key (for
//     instance because every secret has expired), or a JWT's signature does
//     not verify;
//   - ErrBadAlgorithm if a JWT's alg is not RS256;
//   - ErrUnknownKey if a JWT names no kid, or one the JWKS lacks even after
//     a refetch;
//   - ErrTokenExpired if a JWT has no exp, or exp is past beyond the leeway;
//   - ErrWrongAudience if a JWT's aud lacks Config.Audience (the reason
//     quotes the token's aud, which is only read once its signature has
//     verified);
//   - ErrWrongIssuer if Config.Issuer is set and differs from iss;
//   - ErrJWKSUnavailable if Verify cannot decide for want of keys: the
//     JWKS cannot be fetched and none is cached, ctx ends while waiting
//     for a fetch, no cached key verifies the delivery and the refetch that
//     would pick up rotated keys fails, or the MaxEd25519Checks budget ran
//     out with (v1a entry, key) pairs untried and none of those tried
//     verified (there are more pairs than the budget: more than three
//     Ed25519 keys, or two v1a entries and more than one key); the reason
//     then says how many keys went untried, and Gemini's retry goes on with
//     them. Rather than a sentinel of its own for "could not finish
//     checking", this one covers every undecided outcome, so that a
//     receiver has one error to answer 503. It wins over a v1 entry that
//     did not verify, so that Gemini retries a genuine delivery.
func (v *Verifier) Verify(ctx context.Context, h http.Header, body []byte) (Result, error) {
	r, err := v.verify(ctx, h, body)
	if err != nil {
		return Result{}, err
	}
	return r, nil
}

func (v *Verifier) verify(ctx context.Context, h http.Header, body []byte) (Result, *Error) {
	values := headerValues(h, headerSignature)
	size, blank := 0, true
	for _, s := range values {
		size += len(s)
		blank = blank && strings.TrimSpace(s) == ""
	}
	if blank {
		return Result{}, fail(ErrMissingHeader, "webhook-signature header is absent")
	}
	if size > MaxSignatureHeaderLen {
		return Result{}, fail(ErrMalformedHeader, "webhook-signature is longer than "+strconv.Itoa(MaxSignatureHeaderLen)+" bytes")
	}
	id := headerValue(h, headerID)
	if len(id) > MaxWebhookIDLen {
		return Result{}, fail(ErrMalformedHeader, "webhook-id is longer than "+strconv.Itoa(MaxWebhookIDLen)+" bytes")
	}
	if len(values) == 1 {
		if token, ok := jwtToken(values[0]); ok {
			return v.verifyJWTDelivery(ctx, h, token)
		}
	}

	var e entries
	if err := parseSignatureHeader(values, &e); err != nil {
		return Result{}, err
	}
	hasV1 := e.nv1 > 0
	tryHMAC := hasV1 && len(v.secrets) > 0
	tryEd25519 := e.nv1a > 0 && v.keys != nil
	if !tryHMAC && !tryEd25519 {
		switch {
		case hasV1:
			return Result{}, fail(ErrSchemeNotConfigured, "v1 (static HMAC) signature, but no secret is configured")
		case e.nv1a > 0:
			return Result{}, fail(ErrSchemeNotConfigured, "v1a (dynamic Ed25519) signature, but no JWKSURL is configured")
		}
		return Result{}, fail(ErrNoMatchingSignature, "webhook-signature has no v1 or v1a entry")
	}

	if id == "" {
		return Result{}, fail(ErrMissingHeader, "webhook-id header is absent")
	}
	tsText := headerValue(h, headerTimestamp)
	if tsText == "" {
		return Result{}, fail(ErrMissingHeader, "webhook-timestamp header is absent")
	}
	now := v.now()
	ts, err := checkTimestamp(tsText, now, v.tolerance)
	if err != nil {
		return Result{}, err
	}

	var fault *Error
	if tryHMAC {
		i, err := v.verifyHMAC(id, tsText, body, &e, now)
		if err == nil {
			return Result{Scheme: SchemeHMAC, WebhookID: id, Timestamp: ts, SecretIndex: i, KeyID: v.secrets[i].keyID}, nil
		}
		fault = err
	}
	if tryEd25519 {
		kid, err := v.verifyEd25519(ctx, id, tsText, body, &e)
		if err == nil {
			return Result{Scheme: SchemeEd25519, WebhookID: id, Timestamp: ts, SecretIndex: -1, KeyID: kid}, nil
		}
		// The dynamic failure is the more informative one when the HMAC
		// failure was only that nothing matched, and it always wins when
		// it is transient: a genuine v1a delivery must be retried.
		if fault == nil || fault.Err == ErrNoMatchingSignature || err.Err == ErrJWKSUnavailable {
			fault = err
		}
	}
	return Result{}, fault
}

// verifyHMAC checks the v1 entries against every live secret and returns
// the index of the one that matched.
func (v *Verifier) verifyHMAC(id, ts string, body []byte, e *entries, now time.Time) (int, *Error) {
	live := 0
	for i, k := range v.secrets {
		if !k.live(now) {
			continue
		}
		live++
		if k.matches(id, ts, body, e.v1[:e.nv1]) {
			return i, nil
		}
	}
	if live == 0 {
		return -1, fail(ErrNoMatchingSignature, "every configured secret has expired")
	}
	for _, s := range e.v1[:e.nv1] {
		var mac [sha256.Size]byte
		if decodeSignature(mac[:], s) {
			return -1, fail(ErrNoMatchingSignature, "no v1 entry matches any live secret")
		}
	}
	return -1, fail(ErrMalformedHeader, "no v1 entry holds a base64 HMAC-SHA256 signature")
}

// verifyJWTDelivery verifies a delivery whose webhook-signature is a JWT.
// The token signs only its claims, so the Result is built from them alone:
// webhook-id and webhook-timestamp, checked by the caller and here, are
// never copied into it.
func (v *Verifier) verifyJWTDelivery(ctx context.Context, h http.Header, token string) (Result, *Error) {
	switch {
	case strings.Count(token, ".") != 2:
		return Result{}, fail(ErrMalformedHeader, "webhook-signature is neither a list of version,signature entries nor a compact JWS")
	case v.keys == nil:
		return Result{}, fail(ErrSchemeNotConfigured, "JWT (dynamic) signature, but no JWKSURL is configured")
	case v.audience == "":
		return Result{}, fail(ErrSchemeNotConfigured, "JWT (dynamic) signature, but no Audience is configured: "+
			"set Config.Audience to the audience Gemini uses for this endpoint")
	}
	if tsText := headerValue(h, headerTimestamp); tsText != "" {
		if _, err := checkTimestamp(tsText, v.now(), v.tolerance); err != nil {
			return Result{}, err
		}
	}
	kid, claims, err := v.verifyJWT(ctx, token)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Scheme:      SchemeJWT,
		WebhookID:   jwtWebhookID(claims.Raw, token),
		Timestamp:   claims.IssuedAt,
		SecretIndex: -1,
		KeyID:       kid,
		Claims:      claims,
	}, nil
}

// isGoogleOAuthCerts reports whether u is Google's general-purpose OAuth
// key set, which Google's webhook docs also link to.
func isGoogleOAuthCerts(u string) bool {
	p, err := url.Parse(u)
	return err == nil && strings.EqualFold(p.Hostname(), "www.googleapis.com") && strings.HasPrefix(p.Path, "/oauth2/")
}

// trustworthyIssuer reports whether an Issuer check tells a Gemini token
// from a Google account's ID token, which carries accounts.google.com.
func trustworthyIssuer(iss string) bool {
	iss = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(iss), "https://"), "/")
	return iss != "" && !strings.EqualFold(iss, "accounts.google.com")
}

// reasonOf returns the reason of err, without the sentinel's text when err
// is an *Error.
func reasonOf(err error) string {
	switch e := err.(type) {
	case nil:
		return "no keys"
	case *Error:
		return e.Reason
	}
	return err.Error()
}
