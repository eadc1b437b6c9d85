package verify

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The only JWT algorithm accepted, the one Google's webhook documentation
// names. Allowing any other, in particular "none" or an HMAC one that would
// treat the RSA public key as a shared secret, would let anyone forge a
// delivery.
const jwtAlgorithm = "RS256"

// maxKIDInReason bounds how much of an attacker-chosen kid an error quotes.
const maxKIDInReason = 64

// maxAudInReason bounds how much of a token's aud an error quotes, in
// total.
const maxAudInReason = 100

// jwtIDPrefix starts the Result.WebhookID of a JWT delivery whose token
// has no usable jti: the rest is the token's SHA-256 in base64url.
const jwtIDPrefix = "jwt:"

// bearerPrefix may precede a JWT in webhook-signature, as in Authorization.
const bearerPrefix = "Bearer "

// jwtToken returns the compact JWS in a webhook-signature value, and whether
// the value is one. The rule: a value containing no comma is a JWT (with an
// optional, case-insensitive "Bearer " prefix), because every entry of a
// Standard Webhooks list is "version,signature" and so has a comma, while
// the base64url segments of a JWS cannot contain one. Whether the JWT is
// well formed (three segments) is checked later, by the parser.
func jwtToken(value string) (string, bool) {
	value = strings.TrimSpace(value)
	if value == "" || strings.IndexByte(value, ',') >= 0 {
		return "", false
	}
	if len(value) > len(bearerPrefix) && strings.EqualFold(value[:len(bearerPrefix)], bearerPrefix) {
		value = strings.TrimSpace(value[len(bearerPrefix):])
	}
	return value, true
}

// newJWTParser returns the parser for JWT deliveries: RS256 only, one
// textual form per token, and no claim checked, so that claims are only
// looked at once the signature has verified (by the validator).
func newJWTParser() *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwtAlgorithm}),
		// One textual form per token: no non-zero padding bits.
		jwt.WithStrictDecoding(),
		jwt.WithoutClaimsValidation(),
	)
}

// newJWTValidator returns the claims checks of JWT deliveries: exp
// required, nbf when present, aud (JWTs are refused before this check when
// no audience is configured), iss when configured.
func newJWTValidator(cfg *Config, leeway time.Duration, now func() time.Time) *jwt.Validator {
	opts := []jwt.ParserOption{
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return jwt.NewValidator(opts...)
}

// verifyJWT checks a JWT delivery: the signature with the RSA key the
// header's kid names (refetching the JWKS once if the kid is unknown), then,
// only once the signature has verified, exp, nbf, aud and iss. It returns
// the kid and the claims.
//
// It fails with ErrMalformedHeader, ErrBadAlgorithm, ErrUnknownKey,
// ErrJWKSUnavailable (also when the kid is unknown and the key set could
// not be refreshed), ErrNoMatchingSignature, ErrTokenExpired,
// ErrWrongAudience, ErrWrongIssuer, or ErrTooNew (nbf in the future).
func (v *Verifier) verifyJWT(ctx context.Context, token string) (string, *Claims, *Error) {
	var kid string
	keyfunc := func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != jwtAlgorithm {
			return nil, fail(ErrBadAlgorithm, "JWT alg is not "+jwtAlgorithm)
		}
		id, _ := t.Header["kid"].(string)
		if id == "" {
			return nil, fail(ErrUnknownKey, "JWT header has no kid")
		}
		set, err := v.keys.Keys(ctx)
		if set == nil {
			return nil, fail(ErrJWKSUnavailable, reasonOf(err))
		}
		key, ok := set.RSAKey(id)
		if !ok {
			// Google may have rotated its keys; the cache rate-limits this.
			fresh, err := v.keys.Refresh(ctx)
			key, ok = fresh.RSAKey(id)
			if !ok && err != nil {
				return nil, fail(ErrJWKSUnavailable, "no cached RSA key has kid "+quoteKID(id)+", and the key set could not be refreshed: "+reasonOf(err))
			}
		}
		if !ok {
			return nil, fail(ErrUnknownKey, "no RSA key in the JWKS has kid "+quoteKID(id))
		}
		kid = id
		return key, nil
	}
	claims := jwt.MapClaims{}
	t, err := v.parser.ParseWithClaims(token, claims, keyfunc)
	if err != nil {
		return "", nil, parseError(t, err)
	}
	// The signature has verified: the claims are Google's words.
	if err := v.validator.Validate(claims); err != nil {
		return "", nil, v.claimsError(claims, err)
	}
	if _, err := claims.GetIssuedAt(); err != nil {
		return "", nil, fail(ErrMalformedHeader, "JWT has a registered claim of the wrong JSON type")
	}
	return kid, newClaims(claims), nil
}

// parseError maps an error from the JWT parser, which checks no claim, to
// this package's sentinels.
func parseError(t *jwt.Token, err error) *Error {
	var ve *Error
	if errors.As(err, &ve) {
		return ve // from the keyfunc
	}
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return fail(ErrMalformedHeader, "JWT is not a well-formed compact JWS")
	}
	if alg, _ := tokenAlg(t); alg != jwtAlgorithm {
		if alg == "" {
			return fail(ErrBadAlgorithm, "JWT header names no alg")
		}
		return fail(ErrBadAlgorithm, "JWT alg "+strconv.Quote(truncate(alg, 16))+" is not "+jwtAlgorithm)
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return fail(ErrNoMatchingSignature, "JWT signature does not verify under the key its kid names")
	}
	return fail(ErrMalformedHeader, "JWT is not a well-formed compact JWS")
}

// claimsError maps an error from the claims validator to this package's
// sentinels. It is only called once the token's signature has verified, so
// its reasons may quote claims.
func (v *Verifier) claimsError(claims jwt.MapClaims, err error) *Error {
	if errors.Is(err, jwt.ErrInvalidType) {
		return fail(ErrMalformedHeader, "JWT has a registered claim of the wrong JSON type")
	}
	if _, hasExp := claims["exp"]; !hasExp {
		return fail(ErrTokenExpired, "JWT has no exp claim")
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return fail(ErrTokenExpired, "JWT exp is further in the past than the leeway of "+v.leeway.String())
	}
	if aud, _ := claims.GetAudience(); len(aud) == 0 || len(aud) == 1 && aud[0] == "" {
		return fail(ErrWrongAudience, "JWT has no aud claim")
	} else if errors.Is(err, jwt.ErrTokenInvalidAudience) {
		return fail(ErrWrongAudience, "JWT aud "+quoteList(aud, maxAudInReason)+
			" does not contain the configured audience; if this endpoint is the one meant, set Config.Audience to it")
	}
	if errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		return fail(ErrWrongIssuer, "JWT iss is not the configured issuer")
	}
	if iss, _ := claims.GetIssuer(); v.issuer != "" && iss == "" {
		return fail(ErrWrongIssuer, "JWT has no iss claim")
	}
	if errors.Is(err, jwt.ErrTokenNotValidYet) {
		return fail(ErrTooNew, "JWT nbf is further in the future than the leeway of "+v.leeway.String())
	}
	return fail(ErrMalformedHeader, "JWT claims are invalid")
}

func tokenAlg(t *jwt.Token) (string, bool) {
	if t == nil {
		return "", false
	}
	alg, ok := t.Header["alg"].(string)
	return alg, ok
}

// newClaims copies the registered claims out of a verified token's claims.
func newClaims(m jwt.MapClaims) *Claims {
	c := &Claims{Raw: map[string]any(m)}
	c.Issuer, _ = m.GetIssuer()
	c.Subject, _ = m.GetSubject()
	if aud, _ := m.GetAudience(); len(aud) > 0 {
		c.Audience = []string(aud)
	}
	if exp, _ := m.GetExpirationTime(); exp != nil {
		c.ExpiresAt = exp.Time
	}
	if iat, _ := m.GetIssuedAt(); iat != nil {
		c.IssuedAt = iat.Time
	}
	return c
}

// jwtWebhookID returns the Result.WebhookID of a verified JWT delivery,
// taken from signed input only: the jti claim when it is a non-empty string
// of at most MaxWebhookIDLen bytes, else "jwt:" and the base64url SHA-256 of
// the compact token.
func jwtWebhookID(claims map[string]any, token string) string {
	if jti, _ := claims["jti"].(string); jti != "" && len(jti) <= MaxWebhookIDLen {
		return jti
	}
	sum := sha256.Sum256([]byte(token))
	return jwtIDPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

func quoteKID(kid string) string { return strconv.Quote(truncate(kid, maxKIDInReason)) }

// quoteList quotes items, comma-separated, stopping with "..." once about
// max bytes are written.
func quoteList(items []string, max int) string {
	var b strings.Builder
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		left := max - b.Len()
		if left <= 0 {
			b.WriteString("...")
			break
		}
		b.WriteString(strconv.Quote(truncate(s, left)))
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
