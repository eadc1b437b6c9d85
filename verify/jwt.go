package verify

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The only JWT algorithm accepted (PROTOCOL.md §5). Allowing any other, in
// particular "none" or an HMAC one that would treat the RSA public key as a
// shared secret, would let anyone forge a delivery.
const jwtAlgorithm = "RS256"

// maxKIDInReason bounds how much of an attacker-chosen kid an error quotes.
const maxKIDInReason = 64

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

// newJWTParser returns the parser for JWT deliveries: RS256 only, exp
// required, aud and iss checked when configured.
func newJWTParser(cfg *Config, leeway time.Duration, now func() time.Time) *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwtAlgorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		// One textual form per token: no non-zero padding bits.
		jwt.WithStrictDecoding(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return jwt.NewParser(opts...)
}

// verifyJWT checks a JWT delivery (PROTOCOL.md §5): the signature with the
// RSA key the header's kid names (refetching the JWKS once if the kid is
// unknown), then exp, aud and iss. It returns the kid and the claims.
//
// It fails with ErrMalformedHeader, ErrWrongAudience when no audience is
// configured and SkipAudienceCheck is not set, ErrBadAlgorithm,
// ErrUnknownKey, ErrJWKSUnavailable, ErrNoMatchingSignature,
// ErrTokenExpired, ErrWrongAudience, ErrWrongIssuer, or ErrTooNew (nbf in
// the future).
func (v *Verifier) verifyJWT(ctx context.Context, token string) (string, *Claims, *Error) {
	if strings.Count(token, ".") != 2 {
		return "", nil, fail(ErrMalformedHeader, "webhook-signature is neither a list of version,signature entries nor a compact JWS")
	}
	if v.audience == "" && !v.skipAudience {
		return "", nil, fail(ErrWrongAudience, "no audience configured; set Config.Audience or SkipAudienceCheck")
	}
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
			if fresh, _ := v.keys.Refresh(ctx); fresh != nil {
				key, ok = fresh.RSAKey(id)
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
		return "", nil, v.jwtError(t, claims, err)
	}
	return kid, newClaims(claims), nil
}

// jwtError maps an error from the JWT parser to this package's sentinels.
func (v *Verifier) jwtError(t *jwt.Token, claims jwt.MapClaims, err error) *Error {
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
	if errors.Is(err, jwt.ErrInvalidType) {
		return fail(ErrMalformedHeader, "JWT has a registered claim of the wrong JSON type")
	}
	if _, hasExp := claims["exp"]; !hasExp {
		return fail(ErrTokenExpired, "JWT has no exp claim")
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return fail(ErrTokenExpired, "JWT exp is further in the past than the leeway of "+v.leeway.String())
	}
	if errors.Is(err, jwt.ErrTokenInvalidAudience) {
		return fail(ErrWrongAudience, "JWT aud does not contain the configured audience")
	}
	if aud, _ := claims.GetAudience(); v.audience != "" && (len(aud) == 0 || len(aud) == 1 && aud[0] == "") {
		return fail(ErrWrongAudience, "JWT has no aud claim")
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

func quoteKID(kid string) string { return strconv.Quote(truncate(kid, maxKIDInReason)) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
