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

	"github.com/genaihook/genaihook/internal/httpsurl"
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
	// secrets is Config.Secrets, then Config.Keyring, or what SetKeyring
	// last installed: a Verify reads it once and checks with that snapshot.
	secrets   atomic.Pointer[[]*hmacKey]
	tolerance time.Duration
	now       func() time.Time
	// allowTestVector is Config.allowTestVector, for SetKeyring.
	allowTestVector bool

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
// New returns an *Error wrapping ErrBadConfig, whose reason names the
// setting to fix (a secret by its index, never its value):
//   - if no scheme is configured (no Secrets, no Keyring and no JWKSURL);
//   - if a secret is empty, is not base64, decodes to fewer than
//     MinSecretLen bytes or to zero bytes only, or is the public Standard
//     Webhooks example secret (whsec_MfKQ9r8G...), a test vector anyone
//     can sign with;
//   - if every secret has expired by the clock and JWKSURL is empty;
//   - if JWKSURL is neither https nor http to a loopback host, or has a
//     port of 0 or above 65535;
//   - if Audience is set (the JWT form) with a JWKSURL other than
//     GeminiJWKSURL or an http loopback URL, and Issuer is empty or
//     accounts.google.com: another key set may sign tokens that anyone can
//     obtain for any audience, as Google's OAuth certificates do;
//   - if a duration is negative, Tolerance or Leeway exceeds 1 hour,
//     JWKSRefetchInterval is below 1 second (but not 0), or JWKSMinTTL
//     exceeds JWKSMaxTTL.
func New(cfg Config) (*Verifier, error) {
	for _, d := range []struct {
		name     string
		d        time.Duration
		min, max time.Duration // 0: no bound
		why      string
	}{
		{"Tolerance", cfg.Tolerance, 0, maxSkew, "a delivery that far from the clock is a replay, not a delay; leave it 0 for " + DefaultTolerance.String()},
		{"Leeway", cfg.Leeway, 0, maxSkew, "a token that far past its exp is a replay; leave it 0 for " + defaultLeeway.String()},
		{"JWKSMinTTL", cfg.JWKSMinTTL, 0, 0, ""},
		{"JWKSMaxTTL", cfg.JWKSMaxTTL, 0, 0, ""},
		{"JWKSRefetchInterval", cfg.JWKSRefetchInterval, minRefetchInterval, 0,
			"it is what keeps forged deliveries from turning into key fetches; leave it 0 for 30s"},
	} {
		switch {
		case d.d < 0:
			return nil, fail(ErrBadConfig, d.name+" is negative")
		case d.max != 0 && d.d > d.max:
			return nil, fail(ErrBadConfig, d.name+" "+d.d.String()+" is above "+d.max.String()+": "+d.why)
		case d.min != 0 && d.d != 0 && d.d < d.min:
			return nil, fail(ErrBadConfig, d.name+" "+d.d.String()+" is below "+d.min.String()+": "+d.why)
		}
	}
	v := &Verifier{
		tolerance: cmp.Or(cfg.Tolerance, DefaultTolerance),
		now:       cfg.Now,
		audience:  cfg.Audience,
		issuer:    cfg.Issuer,
		leeway:    cmp.Or(cfg.Leeway, defaultLeeway),

		allowTestVector: cfg.allowTestVector,
	}
	if v.now == nil {
		v.now = time.Now
	}
	keyring := make([]Secret, 0, len(cfg.Secrets)+len(cfg.Keyring))
	for _, value := range cfg.Secrets {
		keyring = append(keyring, Secret{Value: value})
	}
	keyring = append(keyring, cfg.Keyring...)
	keys, err := v.decodeKeyring(keyring, func(i int) string {
		if i < len(cfg.Secrets) {
			return "Secrets[" + strconv.Itoa(i) + "]"
		}
		return "Keyring[" + strconv.Itoa(i-len(cfg.Secrets)) + "]"
	})
	if err != nil {
		return nil, err
	}
	v.secrets.Store(&keys)
	if cfg.JWKSURL != "" {
		if err := jwks.ValidateURL(cfg.JWKSURL); err != nil {
			return nil, fail(ErrBadConfig, "JWKSURL: "+err.Error())
		}
		if cfg.Audience != "" && !knownJWKSURL(cfg.JWKSURL) && !trustworthyIssuer(cfg.Issuer) {
			return nil, fail(ErrBadConfig, "Audience with a JWKSURL other than GeminiJWKSURL needs Issuer: "+
				"a general-purpose key set (Google's OAuth certificates, for one) signs tokens that anyone can obtain for any audience; "+
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
	if v.keys == nil && len(keys) == 0 {
		return nil, fail(ErrBadConfig, "no signature scheme configured: set Secrets or Keyring for static webhooks, JWKSURL for dynamic ones")
	}
	if err := v.checkLive(keys, "Keyring"); err != nil {
		return nil, err
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
//     would pick up rotated keys fails, no cached Ed25519 key verifies a
//     v1a delivery and the rate limit refused the refetch while the set
//     predates the delivery (see below), or the MaxEd25519Checks budget ran
//     out with (v1a entry, key) pairs untried and none of those tried
//     verified (there are more pairs than the budget: more than three
//     Ed25519 keys, or two v1a entries and more than one key); the reason
//     then says how many keys went untried, and Gemini's retry goes on with
//     them. Rather than a sentinel of its own for "could not finish
//     checking", this one covers every undecided outcome, so that a
//     receiver has one error to answer 503. It wins over a v1 entry that
//     did not verify, so that Gemini retries a genuine delivery.
//
// When no cached Ed25519 key verifies a v1a delivery, Verify asks for a
// refetch, which runs at most once per JWKSRefetchInterval whatever the
// traffic. Whether the failure is final then depends on when the keys
// checked were fetched. It is (ErrNoMatchingSignature) when they were
// fetched at or after the moment the delivery was signed: its
// webhook-timestamp, or its arrival if that is earlier, since the
// timestamp is the sender's word. That holds when a fetch ran for this
// call. It is not (ErrJWKSUnavailable) when the rate limit refused the
// refetch and the set is older than that moment: Google may have signed
// with a key it published since, and Gemini's retry, after the Retry-After
// that matches the interval, is checked against a set fetched for it. A
// flood of forgeries is answered the same way, and still costs at most one
// fetch per interval.
func (v *Verifier) Verify(ctx context.Context, h http.Header, body []byte) (Result, error) {
	r, err := v.verify(ctx, h, body)
	if err != nil {
		return Result{}, err
	}
	return r, nil
}

func (v *Verifier) verify(ctx context.Context, h http.Header, body []byte) (Result, *Error) {
	values := headerValues(h, headerSignature)
	id := headerValue(h, headerID)
	var e entries
	if len(values) == 1 && plainV1(values[0]) {
		// A static delivery as Gemini sends it: what the checks below
		// would conclude, without their cost.
		if len(id) > MaxWebhookIDLen {
			return Result{}, fail(ErrMalformedHeader, "webhook-id is longer than "+strconv.Itoa(MaxWebhookIDLen)+" bytes")
		}
		e.v1[0], e.nv1 = values[0][len("v1,"):], 1
	} else {
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
		if len(id) > MaxWebhookIDLen {
			return Result{}, fail(ErrMalformedHeader, "webhook-id is longer than "+strconv.Itoa(MaxWebhookIDLen)+" bytes")
		}
		if len(values) == 1 {
			if token, ok := jwtToken(values[0]); ok {
				return v.verifyJWTDelivery(ctx, h, token)
			}
		}
		if err := parseSignatureHeader(values, &e); err != nil {
			return Result{}, err
		}
	}
	hasV1 := e.nv1 > 0
	secrets := *v.secrets.Load()
	tryHMAC := hasV1 && len(secrets) > 0
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
		i, err := verifyHMAC(secrets, id, tsText, body, &e, now)
		if err == nil {
			return Result{Scheme: SchemeHMAC, WebhookID: id, Timestamp: ts, SecretIndex: i, KeyID: secrets[i].keyID}, nil
		}
		fault = err
	}
	if tryEd25519 {
		// A set fetched after the delivery was signed settles it; the
		// timestamp is the sender's word, so arrival bounds it.
		signed := ts
		if now.Before(signed) {
			signed = now
		}
		kid, err := v.verifyEd25519(ctx, id, tsText, body, &e, signed)
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

// verifyHMAC checks the v1 entries against every live secret of secrets
// and returns the index of the one that matched.
func verifyHMAC(secrets []*hmacKey, id, ts string, body []byte, e *entries, now time.Time) (int, *Error) {
	live := 0
	for i, k := range secrets {
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

// knownJWKSURL reports whether u is a key set whose tokens only Gemini
// mints: GeminiJWKSURL, spelled exactly so, or an http URL on a loopback
// host, where only tests and local fakes run. Any other key set may be a
// general-purpose one (Google alone publishes several: OAuth, securetoken,
// IAP, every service account's), so the JWT form needs an Issuer with it.
func knownJWKSURL(u string) bool {
	if u == GeminiJWKSURL {
		return true
	}
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "http" && httpsurl.IsLoopback(p.Hostname())
}

// trustworthyIssuer reports whether an Issuer check tells a Gemini token
// from a Google account's ID token, which carries accounts.google.com.
func trustworthyIssuer(iss string) bool {
	iss = strings.TrimSpace(iss)
	if len(iss) >= len("https://") && strings.EqualFold(iss[:len("https://")], "https://") {
		iss = iss[len("https://"):]
	}
	iss = strings.TrimSuffix(strings.TrimSuffix(iss, "/"), ".")
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
