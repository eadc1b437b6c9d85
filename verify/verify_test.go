package verify

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// forgedV1 is a well-formed v1 entry that no secret produced.
var forgedV1 = "v1," + base64.StdEncoding.EncodeToString([]byte("forged-forged-forged-forged-mac!"))

// mustNew returns New(cfg), allowing the public test vector's secret, which
// these tests use.
func mustNew(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	cfg.allowTestVector = true
	v, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func TestStandardWebhooksVector(t *testing.T) {
	v := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
	got, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, vecSignature), []byte(vecBody))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Result{
		Scheme:      SchemeHMAC,
		WebhookID:   vecID,
		Timestamp:   vecTime,
		SecretIndex: 0,
		KeyID:       fingerprint(t, vecSecret),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Result mismatch (-want +got):\n%s", diff)
	}
}

func TestSign(t *testing.T) {
	got, err := Sign(vecSecret, vecID, vecTime, []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSignature {
		t.Errorf("Sign = %q, want %q", got, vecSignature)
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!!", "  ", "whsec_AA==", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, MinSecretLen-1))} {
		if _, err := Sign(bad, vecID, vecTime, nil); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Sign(%q) error = %v, want ErrBadConfig", bad, err)
		}
	}
}

func TestSecretForms(t *testing.T) {
	bare := strings.TrimPrefix(vecSecret, "whsec_") // 32 characters: padding-free either way
	key, _ := base64.StdEncoding.DecodeString(bare)
	padded := base64.StdEncoding.EncodeToString(key[:20]) // 20 bytes: ends in "="
	unpadded := strings.TrimRight(padded, "=")
	if padded == unpadded {
		t.Fatal("test secret needs padding")
	}
	tests := []struct {
		name, secret string
		key          []byte
	}{
		{"whsec_ prefix", vecSecret, key},
		{"bare", bare, key},
		{"surrounding white space", " " + vecSecret + "\n", key},
		{"padded", "whsec_" + padded, key[:20]},
		{"unpadded", "whsec_" + unpadded, key[:20]},
		{"bare unpadded", unpadded, key[:20]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, Config{Secrets: []string{tt.secret}, Now: fixedClock(vecTime)})
			sig := hmacEntry(tt.key, vecID, vecTimestamp, []byte(vecBody))
			if _, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, sig), []byte(vecBody)); err != nil {
				t.Errorf("Verify: %v", err)
			}
			got, err := Sign(tt.secret, vecID, vecTime, []byte(vecBody))
			if err != nil || got != sig {
				t.Errorf("Sign = %q, %v; want %q", got, err, sig)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	good := []string{vecSecret}
	zero := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	expired := Config{Keyring: []Secret{{Value: newSecret(t), Expires: vecTime}, {Value: newSecret(t), Expires: vecTime.Add(-time.Hour)}}, Now: fixedClock(vecTime)}
	tests := []struct {
		name             string
		cfg              Config
		wantReason       string
		refuseTestVector bool // leave New's refusal of the public test vector on
	}{
		{"nothing configured", Config{}, "no signature scheme", false},
		{"empty secret", Config{Secrets: []string{vecSecret, ""}}, "Secrets[1]", false},
		{"prefix only", Config{Secrets: []string{"whsec_"}}, "Secrets[0]", false},
		{"not base64", Config{Secrets: []string{"whsec_not*base64!"}}, "Secrets[0]", false},
		{"bad keyring entry", Config{Secrets: good, Keyring: []Secret{{Value: vecSecret}, {Value: "whsec_%%%"}}}, "Keyring[1]", false},
		{"http JWKS", Config{JWKSURL: "http://example.com/jwks.json"}, "JWKSURL", false},
		{"ftp JWKS", Config{JWKSURL: "ftp://127.0.0.1/jwks.json"}, "JWKSURL", false},
		{"JWKS without host", Config{JWKSURL: "https:///jwks.json"}, "JWKSURL", false},
		{"OAuth certs without issuer", Config{JWKSURL: "https://www.googleapis.com/oauth2/v3/certs", Audience: "a"}, "needs Issuer", false},
		{"OAuth certs with Google accounts issuer", Config{JWKSURL: "https://www.googleapis.com/oauth2/v3/certs", Audience: "a", Issuer: "https://accounts.google.com"}, "needs Issuer", false},
		{"negative tolerance", Config{Secrets: good, Tolerance: -time.Second}, "Tolerance", false},
		{"negative leeway", Config{JWKSURL: GeminiJWKSURL, Leeway: -time.Second}, "Leeway", false},
		{"negative min TTL", Config{JWKSURL: GeminiJWKSURL, JWKSMinTTL: -1}, "JWKSMinTTL", false},
		{"negative max TTL", Config{JWKSURL: GeminiJWKSURL, JWKSMaxTTL: -1}, "JWKSMaxTTL", false},
		{"negative refetch interval", Config{JWKSURL: GeminiJWKSURL, JWKSRefetchInterval: -1}, "JWKSRefetchInterval", false},
		{"min TTL above max TTL", Config{JWKSURL: GeminiJWKSURL, JWKSMinTTL: time.Hour, JWKSMaxTTL: time.Minute}, "MinTTL", false},
		{"public test vector", Config{Secrets: []string{vecSecret}}, "Secrets[0]: secret is the public Standard Webhooks example secret", true},
		{"public test vector, bare and unpadded", Config{Secrets: []string{newSecret(t)}, Keyring: []Secret{{Value: strings.TrimPrefix(vecSecret, "whsec_")}}},
			"Keyring[0]: secret is the public Standard Webhooks example secret", true},
		{"zero secret", Config{Secrets: []string{zero}}, "Secrets[0]: secret decodes to zero bytes only", false},
		{"zero keyring secret", Config{JWKSURL: GeminiJWKSURL, Keyring: []Secret{{Value: zero}}}, "Keyring[0]: secret decodes to zero bytes only", false},
		{"every keyring secret expired", expired, "every secret in Keyring has expired", false},
		{"tolerance above an hour", Config{Secrets: good, Tolerance: time.Hour + time.Nanosecond}, "Tolerance 1h0m0.000000001s is above 1h0m0s", false},
		{"leeway above an hour", Config{JWKSURL: GeminiJWKSURL, Leeway: 2 * time.Hour}, "Leeway 2h0m0s is above 1h0m0s", false},
		{"refetch interval below a second", Config{JWKSURL: GeminiJWKSURL, JWKSRefetchInterval: time.Second - 1}, "JWKSRefetchInterval 999.999999ms is below 1s", false},
		{"refetch interval of a nanosecond", Config{JWKSURL: GeminiJWKSURL, JWKSRefetchInterval: 1}, "JWKSRefetchInterval", false},
		{"JWKS port 0", Config{JWKSURL: "https://keys.example:0/jwks.json"}, "JWKSURL: jwks: URL https://keys.example:0/jwks.json: port must be 1 to 65535", false},
		{"JWKS port above 65535", Config{JWKSURL: "http://127.0.0.1:65536/jwks.json"}, "port must be 1 to 65535", false},
		// The JWT form needs an Issuer with any key set but Gemini's: every
		// one of these signs tokens that others can obtain.
		{"OAuth certs, double slash", Config{JWKSURL: "https://www.googleapis.com//oauth2/v3/certs", Audience: "a"}, "needs Issuer", false},
		{"OAuth certs, trailing dot", Config{JWKSURL: "https://www.googleapis.com./oauth2/v3/certs", Audience: "a"}, "needs Issuer", false},
		{"OAuth certs, upper case", Config{JWKSURL: "https://WWW.GOOGLEAPIS.COM/oauth2/v3/certs", Audience: "a"}, "needs Issuer", false},
		{"OAuth certs v1", Config{JWKSURL: "https://www.googleapis.com/oauth2/v1/certs", Audience: "a"}, "needs Issuer", false},
		{"securetoken", Config{JWKSURL: "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com", Audience: "a"}, "needs Issuer", false},
		{"service account", Config{JWKSURL: "https://www.googleapis.com/service_accounts/v1/jwk/sa@p.iam.gserviceaccount.com", Audience: "a"}, "needs Issuer", false},
		{"robot metadata", Config{JWKSURL: "https://www.googleapis.com/robot/v1/metadata/jwk/sa@p.iam.gserviceaccount.com", Audience: "a"}, "needs Issuer", false},
		{"IAP", Config{JWKSURL: "https://www.gstatic.com/iap/verify/public_key-jwk", Audience: "a"}, "needs Issuer", false},
		{"Gemini's host with a trailing dot", Config{JWKSURL: "https://generativelanguage.googleapis.com./.well-known/jwks.json", Audience: "a"}, "needs Issuer", false},
		{"https loopback", Config{JWKSURL: "https://127.0.0.1:8443/jwks.json", Audience: "a"}, "needs Issuer", false},
		{"Google accounts issuer, bare", Config{JWKSURL: "https://keys.example/jwks.json", Audience: "a", Issuer: "accounts.google.com"}, "needs Issuer", false},
		{"Google accounts issuer, odd spelling", Config{JWKSURL: "https://keys.example/jwks.json", Audience: "a", Issuer: " HTTPS://Accounts.Google.com./ "}, "needs Issuer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.allowTestVector = !tt.refuseTestVector
			v, err := New(cfg)
			if v != nil || !errors.Is(err, ErrBadConfig) {
				t.Fatalf("New = %v, %v; want nil, ErrBadConfig", v, err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if !strings.Contains(err.Error(), tt.wantReason) {
				t.Errorf("error %q does not mention %q", err, tt.wantReason)
			}
			for _, s := range append(tt.cfg.Secrets, "not*base64!", "%%%") {
				if s != "" && s != "whsec_" && strings.Contains(err.Error(), strings.TrimPrefix(s, "whsec_")) {
					t.Errorf("error %q quotes a secret", err)
				}
			}
		})
	}
}

// TestShortSecrets checks that New and Sign refuse secrets that decode to
// fewer than MinSecretLen bytes, with a reason naming the index and the
// length but never the value.
func TestShortSecrets(t *testing.T) {
	secretOf := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0xA0 + i)
		}
		return "whsec_" + base64.StdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name   string
		cfg    Config
		secret string // the short one
		want   []string
	}{
		{"one byte", Config{Secrets: []string{"whsec_AA=="}}, "whsec_AA==", []string{"Secrets[0]", "length 1;", "24 to 64"}},
		{"one byte short", Config{Secrets: []string{vecSecret, secretOf(MinSecretLen - 1)}}, secretOf(MinSecretLen - 1),
			[]string{"Secrets[1]", "length 15;", "24 to 64"}},
		{"bare base64", Config{Secrets: []string{"AAAA"}}, "AAAA", []string{"Secrets[0]", "length 3;"}},
		{"in the keyring", Config{Secrets: []string{vecSecret}, Keyring: []Secret{{Value: vecSecret}, {Value: secretOf(8)}}}, secretOf(8),
			[]string{"Keyring[1]", "length 8;", "24 to 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.allowTestVector = true
			v, err := New(tt.cfg)
			if v != nil || !errors.Is(err, ErrBadConfig) {
				t.Fatalf("New = %v, %v; want ErrBadConfig", v, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(tt.secret, "whsec_")) {
				t.Errorf("error %q quotes the secret", err)
			}
			if _, err := Sign(tt.secret, vecID, vecTime, nil); !errors.Is(err, ErrBadConfig) {
				t.Errorf("Sign error = %v, want ErrBadConfig", err)
			}
		})
	}
	t.Run("MinSecretLen bytes are enough", func(t *testing.T) {
		s := secretOf(MinSecretLen)
		if _, err := New(Config{Secrets: []string{s}}); err != nil {
			t.Errorf("New: %v", err)
		}
		if _, err := Sign(s, vecID, vecTime, nil); err != nil {
			t.Errorf("Sign: %v", err)
		}
	})
}

// TestAcceptsDynamic checks that AcceptsDynamic reports whether JWKSURL is
// set, whatever else is.
func TestAcceptsDynamic(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want bool
	}{
		{"static", Config{Secrets: []string{vecSecret}}, false},
		{"keyring", Config{Keyring: []Secret{{Value: vecSecret}}}, false},
		{"dynamic", Config{JWKSURL: GeminiJWKSURL}, true},
		{"dynamic with an audience", Config{JWKSURL: GeminiJWKSURL, Audience: "https://example.com/hook"}, true},
		{"both", Config{Secrets: []string{vecSecret}, JWKSURL: GeminiJWKSURL}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustNew(t, tt.cfg).AcceptsDynamic(); got != tt.want {
				t.Errorf("AcceptsDynamic = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewValid(t *testing.T) {
	for _, cfg := range []Config{
		{Secrets: []string{vecSecret}},
		{Keyring: []Secret{{Value: vecSecret, Expires: vecTime}}, Now: fixedClock(vecTime.Add(-time.Nanosecond))},
		{Keyring: []Secret{{Value: vecSecret, Expires: vecTime}}, JWKSURL: GeminiJWKSURL, Now: fixedClock(vecTime)}, // expired, but dynamic
		{Secrets: []string{newSecret(t)}, Keyring: []Secret{{Value: vecSecret, Expires: vecTime}}, Now: fixedClock(vecTime)},
		{Secrets: []string{vecSecret}, Tolerance: time.Hour, Leeway: time.Hour, JWKSURL: GeminiJWKSURL, JWKSRefetchInterval: time.Second},
		{JWKSURL: "https://keys.example:65535/jwks.json"},
		{JWKSURL: GeminiJWKSURL, Audience: "a"},
		{JWKSURL: "http://127.0.0.1:1/jwks.json", Audience: "a"},
		{JWKSURL: "https://www.googleapis.com/oauth2/v3/certs"}, // v1a only: no JWT is accepted
		{JWKSURL: GeminiJWKSURL},
		{JWKSURL: "http://127.0.0.1:1/jwks.json"},
		{JWKSURL: "http://localhost/jwks.json", Secrets: []string{vecSecret}},
		{JWKSURL: "http://[::1]:8080/jwks.json"},
		{JWKSURL: "https://www.googleapis.com/oauth2/v3/certs", Audience: "a", Issuer: "https://generativelanguage.googleapis.com"},
	} {
		cfg.allowTestVector = true
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

func TestRotation(t *testing.T) {
	oldSecret, newSecretValue, expiring := newSecret(t), newSecret(t), newSecret(t)
	expiry := vecTime.Add(time.Hour)
	cfg := Config{
		Secrets: []string{oldSecret, newSecretValue},
		Keyring: []Secret{{Value: expiring, Expires: expiry}},
	}
	body := []byte(vecBody)
	tests := []struct {
		name      string
		secret    string
		now       time.Time
		wantIndex int
		wantErr   error
	}{
		{"old secret", oldSecret, vecTime, 0, nil},
		{"new secret", newSecretValue, vecTime, 1, nil},
		{"keyring secret long before expiry", expiring, vecTime, 2, nil},
		{"keyring secret just before expiry", expiring, expiry.Add(-time.Nanosecond), 2, nil},
		{"keyring secret at expiry", expiring, expiry, 0, ErrNoMatchingSignature},
		{"keyring secret after expiry", expiring, expiry.Add(time.Minute), 0, ErrNoMatchingSignature},
		{"unexpiring secret after another's expiry", newSecretValue, expiry.Add(time.Minute), 1, nil},
		{"unknown secret", newSecret(t), vecTime, 0, ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Now = fixedClock(tt.now)
			v := mustNew(t, c)
			sig, err := Sign(tt.secret, vecID, tt.now, body)
			if err != nil {
				t.Fatal(err)
			}
			ts := tt.now.Unix()
			got, err := v.Verify(context.Background(), headers(vecID, itoa(ts), sig), body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want := Result{Scheme: SchemeHMAC, WebhookID: vecID, Timestamp: time.Unix(ts, 0),
				SecretIndex: tt.wantIndex, KeyID: fingerprint(t, tt.secret)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Result mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("all secrets expired", func(t *testing.T) {
		// New refuses a keyring already expired; this one expires later.
		clk := newClock(expiry.Add(-time.Nanosecond))
		v := mustNew(t, Config{Keyring: []Secret{{Value: expiring, Expires: expiry}}, Now: clk.Now})
		clk.Advance(time.Nanosecond)
		sig, _ := Sign(expiring, vecID, expiry, body)
		_, err := v.Verify(context.Background(), headers(vecID, itoa(expiry.Unix()), sig), body)
		if !errors.Is(err, ErrNoMatchingSignature) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("Verify error = %v, want ErrNoMatchingSignature about expiry", err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestHeaderCaseInsensitive(t *testing.T) {
	v := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
	for _, names := range [][3]string{
		{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"},
		{"webhook-id", "webhook-timestamp", "webhook-signature"},
		{"WEBHOOK-ID", "WEBHOOK-TIMESTAMP", "WEBHOOK-SIGNATURE"},
		{"wEbHoOk-Id", "Webhook-timestamp", "webhook-Signature"},
	} {
		// Raw map keys, as a hand-built http.Header or a non-net/http
		// server may have them, and canonicalised ones via Set.
		raw := http.Header{names[0]: {vecID}, names[1]: {vecTimestamp}, names[2]: {vecSignature}}
		set := http.Header{}
		set.Set(names[0], vecID)
		set.Set(names[1], vecTimestamp)
		set.Set(names[2], vecSignature)
		for _, h := range []http.Header{raw, set} {
			if _, err := v.Verify(context.Background(), h, []byte(vecBody)); err != nil {
				t.Errorf("Verify with %v: %v", h, err)
			}
		}
	}
}

func TestSignatureHeaderForms(t *testing.T) {
	v := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
	unpadded := strings.TrimRight(vecSignature, "=")
	other := forgedV1
	tests := []struct {
		name, sig string
		wantErr   error
	}{
		{"single", vecSignature, nil},
		{"unpadded base64", unpadded, nil},
		{"second of two", other + " " + vecSignature, nil},
		{"first of two", vecSignature + " " + other, nil},
		{"extra spaces", "  " + vecSignature + "   ", nil},
		{"next to an unknown version", "v2,xyz " + vecSignature, nil},
		{"next to an undecodable v1", "v1,@@@ " + vecSignature, nil},
		{"next to a v1a entry", "v1a,AAAA " + vecSignature, nil},
		{"wrong version label", "v1b," + strings.TrimPrefix(vecSignature, "v1,"), ErrNoMatchingSignature},
		{"only unknown versions", "v2,abc v3,def", ErrNoMatchingSignature},
		{"forged", other, ErrNoMatchingSignature},
		{"flipped bit", vecSignature[:10] + "X" + vecSignature[11:], ErrNoMatchingSignature},
		{"undecodable", "v1,not-base64!", ErrMalformedHeader},
		{"CRLF inside", vecSignature[:20] + "\r\n" + vecSignature[20:], ErrMalformedHeader},
		{"non-zero padding bits", vecSignature[:len(vecSignature)-2] + "F=", ErrMalformedHeader},
		{"no comma in one entry", "v1 " + vecSignature, ErrMalformedHeader},
		{"empty version", ",abc " + vecSignature, ErrMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, tt.sig), []byte(vecBody))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("several header lines", func(t *testing.T) {
		h := headers(vecID, vecTimestamp, other)
		h.Add("Webhook-Signature", vecSignature)
		if _, err := v.Verify(context.Background(), h, []byte(vecBody)); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
	t.Run("body as received", func(t *testing.T) {
		// Re-serialising the body changes it and must fail.
		_, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, vecSignature), []byte(`{"test":2432232314}`))
		if !errors.Is(err, ErrNoMatchingSignature) {
			t.Errorf("Verify error = %v, want ErrNoMatchingSignature", err)
		}
	})
	t.Run("timestamp text as sent", func(t *testing.T) {
		// A leading zero is the same instant but other signed content.
		_, err := v.Verify(context.Background(), headers(vecID, "0"+vecTimestamp, vecSignature), []byte(vecBody))
		if !errors.Is(err, ErrNoMatchingSignature) {
			t.Errorf("Verify error = %v, want ErrNoMatchingSignature", err)
		}
	})
}

// TestSplitSignatureHeader checks webhook-signature headers that a proxy
// split at their commas into several values (as AWS Lambda behind API
// Gateway does), and that genuinely separate values still work.
func TestSplitSignatureHeader(t *testing.T) {
	body := []byte(vecBody)
	f := newDynamicFixture(t)
	v := f.verifier(t, func(c *Config) { c.Secrets = []string{vecSecret}; c.Now = fixedClock(vecTime) })
	sig := strings.TrimPrefix(vecSignature, "v1,")
	forged := strings.TrimPrefix(forgedV1, "v1,")
	edSig := strings.TrimPrefix(v1aEntry(f.ed[0].priv, vecID, vecTimestamp, body), "v1a,")
	tests := []struct {
		name    string
		values  []string
		wantErr error
		want    Scheme
	}{
		{"Standard Webhooks vector, split", []string{"v1", sig}, nil, SchemeHMAC},
		{"v1a entry, split", []string{"v1a", edSig}, nil, SchemeEd25519},
		{"rotation header, split, genuine second", []string{"v1", forged + " v1", sig}, nil, SchemeHMAC},
		{"rotation header, split, genuine first", []string{"v1", sig + " v1", forged}, nil, SchemeHMAC},
		{"v1 and v1a, split", []string{"v1", forged + " v1a", edSig}, nil, SchemeEd25519},
		{"split with spaces kept", []string{"v1", " " + sig}, nil, SchemeHMAC},
		{"separate values", []string{"v1," + forged, "v1," + sig}, nil, SchemeHMAC},
		{"separate values, genuine first", []string{"v1," + sig, "v1," + forged}, nil, SchemeHMAC},
		{"split, forged", []string{"v1", forged}, ErrNoMatchingSignature, ""},
		{"split, a value with a comma left", []string{"v1", sig + ",x"}, ErrMalformedHeader, ""},
		{"split, a piece missing", []string{"v1", sig + " v1"}, ErrMalformedHeader, ""},
		{"a lone version", []string{"v1"}, ErrMalformedHeader, ""},
		{"a lone signature", []string{sig}, ErrMalformedHeader, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Webhook-Id": {vecID}, "Webhook-Timestamp": {vecTimestamp}, "Webhook-Signature": tt.values}
			got, err := v.Verify(context.Background(), h, body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if got.Scheme != tt.want {
				t.Errorf("Scheme = %q, want %q", got.Scheme, tt.want)
			}
		})
	}

	t.Run("static verifier, public vector", func(t *testing.T) {
		v := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
		h := http.Header{
			"Webhook-Id":        {"msg_p5jXN8AQM9LWM0D4loKWxJek"},
			"Webhook-Timestamp": {"1614265330"},
			"Webhook-Signature": {"v1", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		}
		got, err := v.Verify(context.Background(), h, []byte(`{"test": 2432232314}`))
		if err != nil || got.WebhookID != vecID || got.SecretIndex != 0 {
			t.Errorf("Verify = %+v, %v", got, err)
		}
	})
}

func TestTolerance(t *testing.T) {
	body := []byte(vecBody)
	tests := []struct {
		name      string
		tolerance time.Duration
		skew      time.Duration // clock minus timestamp
		wantErr   error
	}{
		{"exact", 0, 0, nil},
		{"default, oldest accepted", 0, DefaultTolerance, nil},
		{"default, too old", 0, DefaultTolerance + time.Second, ErrTooOld},
		{"default, newest accepted", 0, -DefaultTolerance, nil},
		{"default, too new", 0, -DefaultTolerance - time.Second, ErrTooNew},
		{"custom, accepted", time.Minute, time.Minute, nil},
		{"custom, too old", time.Minute, time.Minute + time.Second, ErrTooOld},
		{"custom, too new", time.Minute, -time.Minute - time.Second, ErrTooNew},
		{"sub-second clock", 0, DefaultTolerance + 500*time.Millisecond, ErrTooOld},
		{"years old", 0, 10 * 365 * 24 * time.Hour, ErrTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, Config{Secrets: []string{vecSecret}, Tolerance: tt.tolerance, Now: fixedClock(vecTime.Add(tt.skew))})
			_, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, vecSignature), body)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("checked before the signature", func(t *testing.T) {
		v := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime.Add(time.Hour))})
		_, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, forgedV1), body)
		if !errors.Is(err, ErrTooOld) {
			t.Errorf("Verify error = %v, want ErrTooOld", err)
		}
	})
}

func TestMalformedTimestamp(t *testing.T) {
	v := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
	for _, ts := range []string{"abc", "-1614265330", "+1614265330", "1614265330.0", "1.6e9", " 1614265330", "1614265330 ", "0x60380b72", "1234567890123456789", "١٦١٤٢٦٥٣٣٠"} {
		_, err := v.Verify(context.Background(), headers(vecID, ts, vecSignature), []byte(vecBody))
		if !errors.Is(err, ErrMalformedTimestamp) {
			t.Errorf("timestamp %q: Verify error = %v, want ErrMalformedTimestamp", ts, err)
		}
	}
}

func TestLimits(t *testing.T) {
	v := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
	many := strings.Repeat("v2,abc ", MaxSignatureEntries-1) + vecSignature
	tests := []struct {
		name, id, sig string
		wantErr       error
	}{
		{"entries at the limit", vecID, many, nil},
		{"too many entries", vecID, "v2,abc " + many, ErrMalformedHeader},
		{"header too long", vecID, vecSignature + " v2," + strings.Repeat("A", MaxSignatureHeaderLen), ErrMalformedHeader},
		{"id at the limit", strings.Repeat("i", MaxWebhookIDLen), "", nil},
		{"id too long", strings.Repeat("i", MaxWebhookIDLen+1), "", ErrMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.sig
			if sig == "" {
				sig = hmacEntry(mustDecode(t, vecSecret), tt.id, vecTimestamp, []byte(vecBody))
			}
			_, err := v.Verify(context.Background(), headers(tt.id, vecTimestamp, sig), []byte(vecBody))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func mustDecode(t testing.TB, secret string) []byte {
	t.Helper()
	key, err := decodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestSignSecrets checks that Sign refuses a secret of zero bytes only, as
// New does, but accepts the public test vector's, so that tests can
// reproduce it.
func TestSignSecrets(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		wantErr error
	}{
		{"zero bytes", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32)), ErrBadConfig},
		{"zero bytes, bare", base64.StdEncoding.EncodeToString(make([]byte, MinSecretLen)), ErrBadConfig},
		{"public test vector", vecSecret, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Sign(tt.secret, vecID, vecTime, nil); !errors.Is(err, tt.wantErr) {
				t.Errorf("Sign error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
