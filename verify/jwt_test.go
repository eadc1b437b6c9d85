package verify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// TestJWTNeedsAudience checks that a JWT delivery is accepted only by a
// verifier with an Audience, and that the refusal says what to set.
func TestJWTNeedsAudience(t *testing.T) {
	f := newDynamicFixture(t)
	token := f.rsa.sign(t, jwtClaims(vecTime, testAudience))
	dynamic := Config{JWKSURL: f.srv.url(), HTTPClient: f.srv.Client(), Now: f.clock.Now}
	with := func(mod func(*Config)) Config {
		c := dynamic
		mod(&c)
		return c
	}
	tests := []struct {
		name       string
		cfg        Config
		wantErr    error
		wantReason string
	}{
		{"JWKSURL without Audience", dynamic, ErrSchemeNotConfigured,
			"set Config.Audience to the audience Gemini uses for this endpoint"},
		{"JWKSURL and Secrets without Audience", with(func(c *Config) { c.Secrets = []string{vecSecret} }), ErrSchemeNotConfigured,
			"set Config.Audience"},
		{"JWKSURL with an Issuer but no Audience", with(func(c *Config) { c.Issuer = "https://generativelanguage.googleapis.com" }), ErrSchemeNotConfigured,
			"set Config.Audience"},
		{"static only", Config{Secrets: []string{vecSecret}, Now: f.clock.Now}, ErrSchemeNotConfigured, "no JWKSURL"},
		{"JWKSURL with Audience", with(func(c *Config) { c.Audience = testAudience }), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.cfg)
			before := f.srv.fetches.Load()
			got, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, token), []byte(vecBody))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if got.Scheme != SchemeJWT {
					t.Errorf("Scheme = %q, want jwt", got.Scheme)
				}
				return
			}
			if !strings.Contains(err.Error(), tt.wantReason) {
				t.Errorf("error %q does not say %q", err, tt.wantReason)
			}
			if n := f.srv.fetches.Load(); n != before {
				t.Errorf("a refused JWT caused %d key fetches", n-before)
			}
		})
	}
}

// TestWrongAudienceReason checks that ErrWrongAudience quotes the token's
// aud, bounded, so that a user can configure it, but only once the token's
// signature has verified: a forger's claims are never echoed.
func TestWrongAudienceReason(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, nil)
	other := newRSAKey(t, "rsa-other", 1)
	claims := func(aud any) jwt.MapClaims {
		c := jwtClaims(vecTime, "")
		c["aud"] = aud
		return c
	}
	const forgedAud = "https://attacker.example/forged-aud"
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(forgedAud))
		tok.Header["kid"] = f.rsa.kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	long := strings.Repeat("a", 300)
	tests := []struct {
		name    string
		token   string
		wantErr error
		want    []string // in the reason
		notWant string   // never in the reason
	}{
		{name: "one audience", token: f.rsa.sign(t, claims("https://other.example/hook")),
			wantErr: ErrWrongAudience, want: []string{`"https://other.example/hook"`, "Config.Audience"}},
		{name: "several audiences", token: f.rsa.sign(t, claims([]string{"https://a.example", "https://b.example"})),
			wantErr: ErrWrongAudience, want: []string{`"https://a.example", "https://b.example"`}},
		{name: "a long audience is truncated", token: f.rsa.sign(t, claims(long)),
			wantErr: ErrWrongAudience, want: []string{`"aaaa`}},
		{name: "many audiences are truncated", token: f.rsa.sign(t, claims([]string{long[:60], long[:60], long[:60]})),
			wantErr: ErrWrongAudience, want: []string{"..."}},
		{name: "signed by a key the JWKS lacks, under a known kid", token: rsaKey{kid: f.rsa.kid, priv: other.priv}.sign(t, claims(forgedAud)),
			wantErr: ErrNoMatchingSignature, notWant: forgedAud},
		{name: "signed by a key the JWKS lacks, under an unknown kid", token: rsaKey{kid: "stranger", priv: other.priv}.sign(t, claims(forgedAud)),
			wantErr: ErrUnknownKey, notWant: forgedAud},
		{name: "unsigned", token: none(), wantErr: ErrBadAlgorithm, notWant: forgedAud},
		{name: "tampered aud", token: retarget(t, f.rsa.sign(t, claims(testAudience)), forgedAud),
			wantErr: ErrNoMatchingSignature, notWant: forgedAud},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), headers("", "", tt.token), nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(e.Reason, w) {
					t.Errorf("reason %q does not hold %q", e.Reason, w)
				}
			}
			if tt.notWant != "" && strings.Contains(e.Reason, tt.notWant) {
				t.Errorf("reason %q quotes the aud of a token whose signature did not verify", e.Reason)
			}
			// About 100 bytes of aud at most, quotes and separators aside.
			_, quoted, _ := strings.Cut(e.Reason, "JWT aud ")
			quoted, _, _ = strings.Cut(quoted, " does not contain")
			if len(quoted) > 120 {
				t.Errorf("reason quotes %d bytes of aud, want about 100 at most: %q", len(quoted), e.Reason)
			}
		})
	}
}

// retarget replaces the aud of a signed token without re-signing it.
func retarget(t *testing.T, token, aud string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims := jwtClaims(vecTime, aud)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	unsigned, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + strings.Split(unsigned, ".")[1] + "." + parts[2]
}

// TestJWTResultFromSignedInput checks that a JWT delivery's Result takes
// its WebhookID and Timestamp from the token's claims only: the
// webhook-id and webhook-timestamp headers, which the token does not sign,
// are checked but never copied.
func TestJWTResultFromSignedInput(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, nil)
	now := f.clock.Now()
	iat := now.Add(-30 * time.Second)
	sign := func(mod func(jwt.MapClaims)) string {
		c := jwtClaims(iat, testAudience)
		c["exp"] = now.Add(5 * time.Minute).Unix()
		if mod != nil {
			mod(c)
		}
		return f.rsa.sign(t, c)
	}
	attackerID, nowTS := "msg_chosen_by_anyone", itoa(now.Unix())
	tests := []struct {
		name    string
		token   string
		h       func(token string) http.Header
		wantID  func(token string) string // nil: the token's hash
		wantTS  time.Time
		wantErr error
	}{
		{name: "jti", token: sign(func(c jwt.MapClaims) { c["jti"] = "evt_7d1b" }),
			wantID: func(string) string { return "evt_7d1b" }, wantTS: iat},
		{name: "jti at MaxWebhookIDLen", token: sign(func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", MaxWebhookIDLen) }),
			wantID: func(string) string { return strings.Repeat("j", MaxWebhookIDLen) }, wantTS: iat},
		{name: "no jti", token: sign(nil), wantTS: iat},
		{name: "empty jti", token: sign(func(c jwt.MapClaims) { c["jti"] = "" }), wantTS: iat},
		{name: "jti not a string", token: sign(func(c jwt.MapClaims) { c["jti"] = 42 }), wantTS: iat},
		{name: "jti longer than MaxWebhookIDLen", token: sign(func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", MaxWebhookIDLen+1) }), wantTS: iat},
		{name: "no iat", token: sign(func(c jwt.MapClaims) { delete(c, "iat") })},
		{name: "Bearer prefix: the hash is of the token alone", token: sign(nil), wantTS: iat,
			h: func(token string) http.Header { return headers(attackerID, nowTS, "Bearer "+token) }},
		{name: "webhook-id longer than MaxWebhookIDLen", token: sign(nil), wantErr: ErrMalformedHeader,
			h: func(token string) http.Header {
				return headers(strings.Repeat("i", MaxWebhookIDLen+1), nowTS, token)
			}},
		{name: "webhook-timestamp too old", token: sign(nil), wantErr: ErrTooOld,
			h: func(token string) http.Header { return headers(attackerID, itoa(now.Add(-time.Hour).Unix()), token) }},
		{name: "webhook-timestamp malformed", token: sign(nil), wantErr: ErrMalformedTimestamp,
			h: func(token string) http.Header { return headers(attackerID, "now", token) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers(attackerID, nowTS, tt.token)
			if tt.h != nil {
				h = tt.h(tt.token)
			}
			got, err := v.Verify(context.Background(), h, []byte(vecBody))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			wantID := jwtHashID(tt.token)
			if tt.wantID != nil {
				wantID = tt.wantID(tt.token)
			}
			if diff := cmp.Diff(wantID, got.WebhookID); diff != "" {
				t.Errorf("WebhookID (-want +got):\n%s", diff)
			}
			if !got.Timestamp.Equal(tt.wantTS) || got.Timestamp.IsZero() != tt.wantTS.IsZero() {
				t.Errorf("Timestamp = %v, want %v", got.Timestamp, tt.wantTS)
			}
		})
	}
}
