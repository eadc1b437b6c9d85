package verify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestEverySentinel drives Verify (and New) into each sentinel error, and
// checks that every error is an *Error whose text quotes no secret,
// signature or body.
func TestEverySentinel(t *testing.T) {
	f := newDynamicFixture(t)
	body := []byte(vecBody)
	static := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
	dynamic := f.verifier(t, nil)
	downSrv := newJWKSServer(t)
	downSrv.down.Store(true)
	down := mustNew(t, Config{JWKSURL: downSrv.url(), HTTPClient: downSrv.Client(), Now: fixedClock(vecTime), Audience: testAudience})
	v1a := v1aEntry(f.ed[0].priv, vecID, vecTimestamp, body)
	claims := jwtClaims(vecTime, testAudience)
	sign := func(mod func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		mod(c)
		return f.rsa.sign(t, c)
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
		tok.Header["kid"] = f.rsa.kid
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	old := itoa(vecTime.Add(-time.Hour).Unix())
	future := itoa(vecTime.Add(time.Hour).Unix())

	tests := []struct {
		sentinel error
		name     string
		v        *Verifier
		h        http.Header
	}{
		{ErrMissingHeader, "no signature", static, headers(vecID, vecTimestamp, "")},
		{ErrMissingHeader, "blank signature", static, http.Header{"Webhook-Id": {vecID}, "Webhook-Timestamp": {vecTimestamp}, "Webhook-Signature": {"  "}}},
		{ErrMissingHeader, "no id", static, headers("", vecTimestamp, vecSignature)},
		{ErrMissingHeader, "no timestamp", static, headers(vecID, "", vecSignature)},
		{ErrMalformedHeader, "entry without comma", static, headers(vecID, vecTimestamp, "v1")},
		{ErrMalformedHeader, "undecodable v1", static, headers(vecID, vecTimestamp, "v1,abc")},
		{ErrMalformedHeader, "undecodable v1a", dynamic, headers(vecID, vecTimestamp, "v1a,abc")},
		{ErrMalformedHeader, "bad JWT", dynamic, headers("", "", "a.b.c")},
		{ErrMalformedTimestamp, "timestamp not a number", static, headers(vecID, "yesterday", vecSignature)},
		{ErrTooOld, "timestamp too old", static, headers(vecID, old, hmacEntry(mustDecode(t, vecSecret), vecID, old, body))},
		{ErrTooNew, "timestamp too new", static, headers(vecID, future, hmacEntry(mustDecode(t, vecSecret), vecID, future, body))},
		{ErrNoMatchingSignature, "forged v1", static, headers(vecID, vecTimestamp, forgedV1)},
		{ErrNoMatchingSignature, "forged v1a", dynamic, headers(vecID, vecTimestamp, v1aEntry(newEdKey(t, "x").priv, vecID, vecTimestamp, body))},
		{ErrUnknownKey, "unknown kid", dynamic, headers("", "", rsaKey{kid: "nope", priv: f.rsa.priv}.sign(t, claims))},
		{ErrBadAlgorithm, "alg none", dynamic, headers("", "", none)},
		{ErrTokenExpired, "exp past", dynamic, headers("", "", sign(func(c jwt.MapClaims) { c["exp"] = vecTime.Add(-time.Hour).Unix() }))},
		{ErrWrongAudience, "aud wrong", dynamic, headers("", "", sign(func(c jwt.MapClaims) { c["aud"] = "elsewhere" }))},
		{ErrWrongIssuer, "iss wrong", f.verifier(t, func(c *Config) { c.Issuer = "someone" }), headers("", "", sign(func(jwt.MapClaims) {}))},
		{ErrJWKSUnavailable, "JWKS down", down, headers(vecID, vecTimestamp, v1a)},
		{ErrSchemeNotConfigured, "v1a at static", static, headers(vecID, vecTimestamp, v1a)},
	}
	covered := map[error]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(context.Background(), tt.h, body)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("Verify error = %v, want %v", err, tt.sentinel)
			}
			checkError(t, err, tt.h, body)
			covered[tt.sentinel] = true
		})
	}
	t.Run("bad config", func(t *testing.T) {
		_, err := New(Config{Secrets: []string{"whsec_" + strings.Repeat("!", 20)}})
		if !errors.Is(err, ErrBadConfig) {
			t.Fatalf("New error = %v, want ErrBadConfig", err)
		}
		checkError(t, err, nil, nil)
		covered[ErrBadConfig] = true
	})

	for _, sentinel := range []error{
		ErrMissingHeader, ErrMalformedHeader, ErrMalformedTimestamp, ErrTooOld, ErrTooNew,
		ErrNoMatchingSignature, ErrUnknownKey, ErrBadAlgorithm, ErrTokenExpired, ErrWrongAudience,
		ErrWrongIssuer, ErrJWKSUnavailable, ErrSchemeNotConfigured, ErrBadConfig,
	} {
		if !covered[sentinel] {
			t.Errorf("no case produces %v", sentinel)
		}
	}
}

// checkError checks that err is an *Error wrapping one sentinel and that
// its text quotes no signature, secret or body.
func checkError(t *testing.T, err error, h http.Header, body []byte) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not *Error", err)
	}
	if e.Reason == "" {
		t.Errorf("error %v has no reason", err)
	}
	msg := err.Error()
	secrets := []string{strings.TrimPrefix(vecSecret, "whsec_"), strings.Repeat("!", 20)}
	if len(body) > 0 {
		secrets = append(secrets, string(body))
	}
	for _, v := range h.Values("Webhook-Signature") {
		for entry := range strings.FieldsSeq(v) {
			_, sig, _ := strings.Cut(entry, ",")
			if len(sig) > 8 {
				secrets = append(secrets, sig)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error %q quotes %q", msg, s)
		}
	}
}
