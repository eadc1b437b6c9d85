package verify

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/genaihook/genaihook/internal/jwks/jwkstest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testAudience = "https://receiver.example.com/gemini/webhook"

// dynamicFixture is a JWKS server with three Ed25519 keys (as Google
// publishes) and one RSA key, and a clock.
type dynamicFixture struct {
	srv   *jwksServer
	clock *clock
	ed    []edKey
	rsa   rsaKey
}

func newDynamicFixture(t *testing.T) *dynamicFixture {
	t.Helper()
	f := &dynamicFixture{
		clock: newClock(vecTime),
		ed:    []edKey{newEdKey(t, "ed-1"), newEdKey(t, "ed-2"), newEdKey(t, "ed-3")},
		rsa:   newRSAKey(t, "rsa-1", 0),
	}
	f.srv = newJWKSServer(t, f.ed[0].jwk(), f.ed[1].jwk(), f.ed[2].jwk(), f.rsa.jwk())
	return f
}

// verifier returns a dynamic-only verifier; mod may adjust its config.
func (f *dynamicFixture) verifier(t *testing.T, mod func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{JWKSURL: f.srv.url(), HTTPClient: f.srv.Client(), Now: f.clock.Now, Audience: testAudience}
	if mod != nil {
		mod(&cfg)
	}
	return mustNew(t, cfg)
}

func (f *dynamicFixture) v1aHeaders(k edKey, body []byte) map[string][]string {
	ts := itoa(f.clock.Now().Unix())
	return headers(vecID, ts, v1aEntry(k.priv, vecID, ts, body))
}

func TestEd25519ThreeKeys(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, nil)
	body := []byte(vecBody)
	for _, k := range f.ed {
		got, err := v.Verify(context.Background(), f.v1aHeaders(k, body), body)
		if err != nil {
			t.Fatalf("key %s: Verify: %v", k.kid, err)
		}
		want := Result{Scheme: SchemeEd25519, WebhookID: vecID, Timestamp: vecTime, SecretIndex: -1, KeyID: k.kid}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("key %s: Result mismatch (-want +got):\n%s", k.kid, diff)
		}
		if !got.Scheme.Dynamic() {
			t.Errorf("Scheme %q is not dynamic", got.Scheme)
		}
	}
	if n := f.srv.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

func TestEd25519Failures(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, nil)
	body := []byte(vecBody)
	ts := vecTimestamp
	good := v1aEntry(f.ed[0].priv, vecID, ts, body) // the first key: tried first with up to MaxEd25519Entries entries
	stranger := newEdKey(t, "stranger")
	forged := v1aEntry(stranger.priv, vecID, ts, body)
	// An RSA signature over the same content, labelled v1a.
	sum := sha256.Sum256(append([]byte(vecID+"."+ts+"."), body...))
	rsaSig, err := rsa.SignPKCS1v15(rand.Reader, f.rsa.priv, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sig string
		body      string
		wantErr   error
	}{
		{"genuine", good, vecBody, nil},
		{"genuine after a forged entry", v1aEntry(stranger.priv, vecID, ts, body) + " " + good, vecBody, nil},
		{"unknown key", v1aEntry(stranger.priv, vecID, ts, body), vecBody, ErrNoMatchingSignature},
		{"body changed", good, vecBody + " ", ErrNoMatchingSignature},
		{"RSA signature as v1a", "v1a," + base64.StdEncoding.EncodeToString(rsaSig), vecBody, ErrMalformedHeader},
		{"not base64", "v1a,@@@", vecBody, ErrMalformedHeader},
		{"Ed25519 signature under a v1 label", "v1," + strings.TrimPrefix(good, "v1a,"), vecBody, ErrSchemeNotConfigured},
		// Each v1a entry costs a pass over the body per key: the count is capped.
		{"v1a entries at the limit", strings.Repeat(forged+" ", MaxEd25519Entries-1) + good, vecBody, nil},
		{"too many v1a entries", strings.Repeat(forged+" ", MaxEd25519Entries) + good, vecBody, ErrMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), headers(vecID, ts, tt.sig), []byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("Ed25519 signature under a v1 label, with secrets", func(t *testing.T) {
		v := f.verifier(t, func(c *Config) { c.Secrets = []string{vecSecret} })
		_, err := v.Verify(context.Background(), headers(vecID, ts, "v1,"+strings.TrimPrefix(good, "v1a,")), body)
		if err == nil {
			t.Fatal("an Ed25519 signature under a v1 label verified")
		}
		if !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("Verify error = %v, want ErrMalformedHeader", err)
		}
	})

	t.Run("RSA key never verifies v1a", func(t *testing.T) {
		// A JWKS with only RSA keys: a v1a entry finds no key.
		srv := newJWKSServer(t, f.rsa.jwk())
		v := mustNew(t, Config{JWKSURL: srv.url(), HTTPClient: srv.Client(), Now: f.clock.Now})
		_, err := v.Verify(context.Background(), headers(vecID, ts, good), body)
		if !errors.Is(err, ErrNoMatchingSignature) {
			t.Errorf("Verify error = %v, want ErrNoMatchingSignature", err)
		}
	})
}

func TestEd25519KeyRotation(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, nil)
	body := []byte(vecBody)
	ctx := context.Background()
	if _, err := v.Verify(ctx, f.v1aHeaders(f.ed[0], body), body); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	// Google rotates: ed-1 goes, ed-4 arrives. The cache still holds the
	// old set (its TTL is an hour).
	newKey := newEdKey(t, "ed-4")
	f.srv.setKeys(f.ed[1].jwk(), f.ed[2].jwk(), newKey.jwk())
	f.clock.Advance(time.Minute) // past the refetch interval, well within the TTL
	got, err := v.Verify(ctx, f.v1aHeaders(newKey, body), body)
	if err != nil {
		t.Fatalf("delivery signed with the new key: %v", err)
	}
	if got.KeyID != "ed-4" {
		t.Errorf("KeyID = %q, want ed-4", got.KeyID)
	}
	if n := f.srv.fetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
	// The retired key no longer verifies, and costs no fetch within the
	// interval.
	if _, err := v.Verify(ctx, f.v1aHeaders(f.ed[0], body), body); !errors.Is(err, ErrNoMatchingSignature) {
		t.Errorf("retired key: Verify error = %v, want ErrNoMatchingSignature", err)
	}
	if n := f.srv.fetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

func TestJWKSEndpointDown(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, nil)
	body := []byte(vecBody)
	ctx := context.Background()
	if _, err := v.Verify(ctx, f.v1aHeaders(f.ed[0], body), body); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	f.srv.down.Store(true)
	enter := make(chan struct{}, 10)
	f.srv.mu.Lock()
	f.srv.enter = enter
	f.srv.mu.Unlock()
	f.clock.Advance(2 * time.Hour) // past the TTL: the cache tries a refetch, which fails
	token := f.rsa.sign(t, jwtClaims(f.clock.Now(), testAudience))
	for round := range 2 {
		for i, k := range f.ed {
			if _, err := v.Verify(ctx, f.v1aHeaders(k, body), body); err != nil {
				t.Errorf("round %d: delivery %d with the endpoint down: %v", round, i, err)
			}
		}
		if _, err := v.Verify(ctx, headers("", "", token), nil); err != nil {
			t.Errorf("round %d: JWT with the endpoint down: %v", round, err)
		}
		if round == 0 {
			<-enter // the refetch, in the background
		}
	}
	if n := f.srv.fetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (one failed refetch, then the rate limit)", n)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	f := newDynamicFixture(t)
	f.srv.down.Store(true)
	v := f.verifier(t, nil)
	body := []byte(vecBody)
	_, err := v.Verify(context.Background(), f.v1aHeaders(f.ed[0], body), body)
	if !errors.Is(err, ErrJWKSUnavailable) {
		t.Errorf("v1a: Verify error = %v, want ErrJWKSUnavailable", err)
	}
	token := f.rsa.sign(t, jwtClaims(f.clock.Now(), testAudience))
	_, err = v.Verify(context.Background(), headers("", "", token), nil)
	if !errors.Is(err, ErrJWKSUnavailable) {
		t.Errorf("JWT: Verify error = %v, want ErrJWKSUnavailable", err)
	}
}

func TestConcurrentRefreshSharesOneFetch(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, nil)
	body := []byte(vecBody)
	ctx := context.Background()
	if _, err := v.Verify(ctx, f.v1aHeaders(f.ed[0], body), body); err != nil {
		t.Fatal(err)
	}
	// Rotate, and hold the refetch at the server until every verifier is
	// under way.
	newKey := newEdKey(t, "ed-new")
	f.srv.setKeys(newKey.jwk())
	gate, enter := make(chan struct{}), make(chan struct{}, 200)
	f.srv.mu.Lock()
	f.srv.gate, f.srv.enter = gate, enter
	f.srv.mu.Unlock()
	f.clock.Advance(time.Minute)

	const n = 100
	h := f.v1aHeaders(newKey, body)
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			started.Done()
			_, err := v.Verify(ctx, h, body)
			errs <- err
		}()
	}
	started.Wait()
	<-enter // the one fetch has reached the server
	close(gate)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := f.srv.fetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (the first fetch and one shared refetch)", got)
	}
}

func TestRefetchRateLimit(t *testing.T) {
	f := newDynamicFixture(t)
	v := f.verifier(t, func(c *Config) { c.JWKSRefetchInterval = time.Minute })
	body := []byte(vecBody)
	ctx := context.Background()
	if _, err := v.Verify(ctx, f.v1aHeaders(f.ed[0], body), body); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute) // the next forged delivery may refetch once
	forger := newEdKey(t, "forger")
	// Valid for five minutes from now: through the whole flood.
	unknownKID := rsaKey{kid: "no-such-kid", priv: f.rsa.priv}.sign(t, jwtClaims(f.clock.Now(), testAudience))
	for i := range 1000 {
		f.clock.Advance(50 * time.Millisecond) // 1000 deliveries within 50 s < 1 min
		var h map[string][]string
		if i%2 == 0 {
			h = f.v1aHeaders(forger, body)
		} else {
			h = headers("", "", unknownKID)
		}
		_, err := v.Verify(ctx, h, body)
		// A v1a forgery checked against a set older than it is undecided
		// (see TestEd25519KeyPublishedWithinRefetchInterval); either way it
		// must not cost a fetch.
		if !errors.Is(err, ErrNoMatchingSignature) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("forged delivery %d: Verify error = %v", i, err)
		}
	}
	if got := f.srv.fetches.Load(); got > 2 {
		t.Errorf("JWKS fetched %d times for 1000 forged deliveries, want at most 2", got)
	}
}

// TestEd25519KeyPublishedWithinRefetchInterval checks the rule that tells a
// forgery from a delivery signed with a key Google published after the last
// fetch: a no-match is final (401) only against a set fetched at or after
// the delivery was signed (its timestamp, bounded by its arrival); when the
// rate limit defers the refetch of an older set it is undecided (503), and
// the retry after the interval verifies. Neither case costs a fetch within
// the interval.
func TestEd25519KeyPublishedWithinRefetchInterval(t *testing.T) {
	const interval = 30 * time.Second // the default
	tests := []struct {
		name        string
		publish     bool          // Google adds the key "ed-new" after the first fetch
		advance     time.Duration // from the first fetch to the delivery's arrival
		signer      string        // "ed-new" or "forger"
		tsOffset    time.Duration // webhook-timestamp minus arrival
		wantErr     error
		wantFetches int64
	}{
		{"new key, 10 s after the fetch", true, 10 * time.Second, "ed-new", 0, ErrJWKSUnavailable, 1},
		{"new key, just inside the interval", true, interval - time.Nanosecond, "ed-new", 0, ErrJWKSUnavailable, 1},
		{"new key, once the interval has passed", true, interval, "ed-new", 0, nil, 2},
		{"new key, signed a minute ago", true, 10 * time.Second, "ed-new", -time.Minute, ErrNoMatchingSignature, 1},
		{"forgery within the interval", false, 10 * time.Second, "forger", 0, ErrJWKSUnavailable, 1},
		{"forgery signed before the fetch", false, 10 * time.Second, "forger", -20 * time.Second, ErrNoMatchingSignature, 1},
		{"forgery signed at the fetch", false, 10 * time.Second, "forger", -10 * time.Second, ErrNoMatchingSignature, 1},
		{"forgery at the instant of the fetch", false, 0, "forger", 0, ErrNoMatchingSignature, 1},
		{"forgery dated in the future: arrival bounds it", false, 10 * time.Second, "forger", 4 * time.Minute, ErrJWKSUnavailable, 1},
		{"forgery after the interval: a fetch runs for it", false, interval, "forger", 0, ErrNoMatchingSignature, 2},
		{"forgery dated in the future, a fetch runs for it", false, interval, "forger", 4 * time.Minute, ErrNoMatchingSignature, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDynamicFixture(t)
			v := f.verifier(t, nil)
			body := []byte(vecBody)
			ctx := context.Background()
			if _, err := v.Verify(ctx, f.v1aHeaders(f.ed[0], body), body); err != nil {
				t.Fatal(err)
			}
			signer := newEdKey(t, tt.signer)
			if tt.publish {
				f.srv.setKeys(f.ed[0].jwk(), f.ed[1].jwk(), f.ed[2].jwk(), signer.jwk(), f.rsa.jwk())
			}
			f.clock.Advance(tt.advance)
			ts := itoa(f.clock.Now().Add(tt.tsOffset).Unix())
			h := headers(vecID, ts, v1aEntry(signer.priv, vecID, ts, body))
			_, err := v.Verify(ctx, h, body)
			if !errors.Is(err, tt.wantErr) || err != nil && tt.wantErr == nil {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrJWKSUnavailable) && !strings.Contains(err.Error(), "could not be refreshed yet") {
				t.Errorf("Verify error = %v, want a reason saying the keys could not be refreshed yet", err)
			}
			if n := f.srv.fetches.Load(); n != tt.wantFetches {
				t.Errorf("JWKS fetched %d times, want %d", n, tt.wantFetches)
			}
			if !errors.Is(err, ErrJWKSUnavailable) {
				return
			}
			// Gemini retries after Retry-After, which matches the interval:
			// the retry is checked against a set fetched for it.
			f.clock.Advance(interval)
			_, err = v.Verify(ctx, h, body)
			switch {
			case tt.publish && err != nil:
				t.Errorf("retry: Verify error = %v, want success", err)
			case !tt.publish && !errors.Is(err, ErrNoMatchingSignature):
				t.Errorf("retry: Verify error = %v, want ErrNoMatchingSignature", err)
			}
			if n := f.srv.fetches.Load(); n != tt.wantFetches+1 {
				t.Errorf("after the retry, JWKS fetched %d times, want %d", n, tt.wantFetches+1)
			}
		})
	}
}

func TestJWT(t *testing.T) {
	f := newDynamicFixture(t)
	now := f.clock.Now()
	ctx := context.Background()
	other := newRSAKey(t, "rsa-other", 1)
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwtClaims(now, testAudience)
		if mod != nil {
			mod(c)
		}
		return c
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&f.rsa.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func() string {
		// The classic key-confusion forgery: HS256 keyed with the RSA
		// public key, which anyone can download.
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
		tok.Header["kid"] = f.rsa.kid
		s, err := tok.SignedString(pubDER)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
		tok.Header["kid"] = f.rsa.kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	edDSA := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(nil))
		tok.Header["kid"] = f.ed[0].kid
		s, err := tok.SignedString(f.ed[0].priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noKID := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil)).SignedString(f.rsa.priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := f.rsa.sign(t, claims(nil))

	tests := []struct {
		name    string
		cfg     func(*Config)
		h       map[string][]string
		wantErr error
	}{
		{"genuine", nil, headers("", "", good), nil},
		{"Bearer prefix", nil, headers("", "", "Bearer "+good), nil},
		{"with id and timestamp", nil, headers(vecID, vecTimestamp, good), nil},
		{"timestamp too old", nil, headers(vecID, itoa(now.Add(-time.Hour).Unix()), good), ErrTooOld},
		{"timestamp malformed", nil, headers(vecID, "soon", good), ErrMalformedTimestamp},
		{"alg none", nil, headers("", "", none()), ErrBadAlgorithm},
		{"HS256 keyed with the RSA public key", nil, headers("", "", hs256()), ErrBadAlgorithm},
		{"EdDSA: an Ed25519 key never verifies a JWT", nil, headers("", "", edDSA()), ErrBadAlgorithm},
		{"RS256 naming an Ed25519 kid", nil, headers("", "", rsaKey{kid: f.ed[0].kid, priv: f.rsa.priv}.sign(t, claims(nil))), ErrUnknownKey},
		{"unknown kid", nil, headers("", "", rsaKey{kid: "nope", priv: f.rsa.priv}.sign(t, claims(nil))), ErrUnknownKey},
		{"no kid", nil, headers("", "", noKID()), ErrUnknownKey},
		{"signed by another key", nil, headers("", "", rsaKey{kid: f.rsa.kid, priv: other.priv}.sign(t, claims(nil))), ErrNoMatchingSignature},
		{"tampered claims", nil, headers("", "", tamper(t, good)), ErrNoMatchingSignature},
		{"exp missing", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "exp") }))), ErrTokenExpired},
		{"exp within leeway", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-20 * time.Second).Unix() }))), nil},
		{"exp beyond leeway", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-31 * time.Second).Unix() }))), ErrTokenExpired},
		{"exp beyond custom leeway", func(c *Config) { c.Leeway = 5 * time.Second }, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }))), ErrTokenExpired},
		{"exp of the wrong type", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }))), ErrMalformedHeader},
		{"nbf in the future", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }))), ErrTooNew},
		{"aud wrong", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "https://attacker.example" }))), ErrWrongAudience},
		{"aud missing", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "aud") }))), ErrWrongAudience},
		{"aud among several", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", testAudience} }))), nil},
		{"no audience configured", func(c *Config) { c.Audience = "" }, headers("", "", good), ErrSchemeNotConfigured},
		{"iat of the wrong type", nil, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["iat"] = "now" }))), ErrMalformedHeader},
		{"iss checked", func(c *Config) { c.Issuer = "https://generativelanguage.googleapis.com" }, headers("", "", good), nil},
		{"iss wrong", func(c *Config) { c.Issuer = "https://accounts.google.com" }, headers("", "", good), ErrWrongIssuer},
		{"iss missing", func(c *Config) { c.Issuer = "https://accounts.google.com" }, headers("", "", f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "iss") }))), ErrWrongIssuer},
		{"two segments", nil, headers("", "", "abc.def"), ErrMalformedHeader},
		{"four segments", nil, headers("", "", good+".x"), ErrMalformedHeader},
		{"garbage segments", nil, headers("", "", "a.b.c"), ErrMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := f.verifier(t, tt.cfg)
			got, err := v.Verify(ctx, tt.h, []byte(vecBody))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got.Scheme != SchemeJWT || got.Claims == nil || got.SecretIndex != -1) {
				t.Errorf("Result = %+v", got)
			}
		})
	}

	t.Run("Result and claims", func(t *testing.T) {
		v := f.verifier(t, nil)
		got, err := v.Verify(ctx, headers(vecID, vecTimestamp, good), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := Result{
			Scheme: SchemeJWT, WebhookID: jwtHashID(good), Timestamp: now, SecretIndex: -1, KeyID: f.rsa.kid,
			Claims: &Claims{
				Issuer:    "https://generativelanguage.googleapis.com",
				Subject:   "batches/abc123",
				Audience:  []string{testAudience},
				ExpiresAt: now.Add(5 * time.Minute),
				IssuedAt:  now,
				Raw: map[string]any{
					"iss": "https://generativelanguage.googleapis.com", "sub": "batches/abc123", "aud": testAudience,
					"iat": float64(now.Unix()), "exp": float64(now.Add(5 * time.Minute).Unix()),
				},
			},
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(0)); diff != "" {
			t.Errorf("Result mismatch (-want +got):\n%s", diff)
		}
	})
}

// tamper changes the JWT's payload without re-signing it.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"evil","aud":"` + testAudience + `","exp":9999999999}`))
	return parts[0] + "." + payload + "." + parts[2]
}

func TestSchemeNotConfigured(t *testing.T) {
	f := newDynamicFixture(t)
	body := []byte(vecBody)
	static := mustNew(t, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
	dynamic := f.verifier(t, nil)
	both := f.verifier(t, func(c *Config) { c.Secrets = []string{vecSecret} })
	v1a := v1aEntry(f.ed[0].priv, vecID, vecTimestamp, body)
	token := f.rsa.sign(t, jwtClaims(vecTime, testAudience))
	tests := []struct {
		name    string
		v       *Verifier
		sig     string
		wantErr error
		want    Scheme
	}{
		{"v1a at static", static, v1a, ErrSchemeNotConfigured, ""},
		{"JWT at static", static, token, ErrSchemeNotConfigured, ""},
		{"v1 at dynamic", dynamic, vecSignature, ErrSchemeNotConfigured, ""},
		{"v1 and v1a at static", static, v1a + " " + vecSignature, nil, SchemeHMAC},
		{"v1 and v1a at dynamic", dynamic, vecSignature + " " + v1a, nil, SchemeEd25519},
		{"v1 at both", both, vecSignature, nil, SchemeHMAC},
		{"v1a at both", both, v1a, nil, SchemeEd25519},
		{"forged v1 and genuine v1a at both", both, forgedV1 + " " + v1a, nil, SchemeEd25519},
		{"JWT at both", both, token, nil, SchemeJWT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Verify(context.Background(), headers(vecID, vecTimestamp, tt.sig), body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if got.Scheme != tt.want {
				t.Errorf("Scheme = %q, want %q", got.Scheme, tt.want)
			}
		})
	}
}

// TestJWKSOutageIsTransient checks that a genuine dynamic delivery that
// cannot be verified because the key server is down or slow fails with
// ErrJWKSUnavailable (answered 503, so Gemini retries), never with
// ErrNoMatchingSignature, even when v1 entries next to it did not verify.
func TestJWKSOutageIsTransient(t *testing.T) {
	body := []byte(vecBody)
	tests := []struct {
		name string
		// rotated: the cache holds the fixture's keys, and the delivery is
		// signed by a key published after; otherwise the cache is empty.
		rotated bool
		// hang: the key server holds requests and the delivery's ctx ends
		// once one has arrived; otherwise it answers 503.
		hang bool
		// prefix goes before the genuine v1a entry; jwt sends a JWT instead.
		prefix string
		jwt    bool
	}{
		{name: "cold start, 503"},
		{name: "cold start, 503, next to a v1 entry that does not match", prefix: forgedV1 + " "},
		{name: "cold start, 503, next to an undecodable v1 entry", prefix: "v1,@@@ "},
		{name: "cold start, 503, JWT", jwt: true},
		{name: "cold start, ctx ends while the key server hangs", hang: true},
		{name: "cold start, ctx ends while the key server hangs, next to an undecodable v1 entry", hang: true, prefix: "v1,@@@ "},
		{name: "rotated key, 503", rotated: true},
		{name: "rotated key, 503, next to an undecodable v1 entry", rotated: true, prefix: "v1,@@@ "},
		{name: "rotated key, 503, JWT with a new kid", rotated: true, jwt: true},
		{name: "rotated key, ctx ends while the key server hangs", rotated: true, hang: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDynamicFixture(t)
			v := f.verifier(t, func(c *Config) { c.Secrets = []string{vecSecret} })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			signer, rsaSigner := f.ed[0], f.rsa
			if tt.rotated {
				if _, err := v.Verify(ctx, f.v1aHeaders(f.ed[0], body), body); err != nil {
					t.Fatalf("delivery before the outage: %v", err)
				}
				f.clock.Advance(time.Minute) // a refetch is allowed, the keys are still fresh
				signer, rsaSigner = newEdKey(t, "ed-new"), rsaKey{kid: "rsa-new", priv: f.rsa.priv}
				f.srv.setKeys(signer.jwk(), rsaSigner.jwk())
			}
			if tt.hang {
				gate, enter := make(chan struct{}), make(chan struct{}, 1)
				f.srv.mu.Lock()
				f.srv.gate, f.srv.enter = gate, enter
				f.srv.mu.Unlock()
				t.Cleanup(func() { close(gate) }) // before the server's Close
				go func() { <-enter; cancel() }()
			} else {
				f.srv.down.Store(true)
			}
			ts := itoa(f.clock.Now().Unix())
			sig := tt.prefix + v1aEntry(signer.priv, vecID, ts, body)
			if tt.jwt {
				sig = rsaSigner.sign(t, jwtClaims(f.clock.Now(), testAudience))
			}
			_, err := v.Verify(ctx, headers(vecID, ts, sig), body)
			if !errors.Is(err, ErrJWKSUnavailable) {
				t.Fatalf("Verify error = %v, want ErrJWKSUnavailable", err)
			}
			checkError(t, err, headers(vecID, ts, sig), body)
		})
	}
}

// TestVerifyHonoursContext checks, on the clock of a synctest bubble, that
// Verify returns by its ctx deadline while the key fetch it started hangs,
// that the fetch goes on and serves the next call, and that cached keys
// verify at once while their refetch hangs.
func TestVerifyHonoursContext(t *testing.T) {
	body := []byte(vecBody)
	t.Run("cold start, key server hangs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			k := newEdKey(t, "ed-1")
			srv := jwkstest.NewTransport(jwksDoc(k.jwk()))
			srv.Hold()
			v := mustNew(t, bubbleConfig(srv, nil))
			ts := itoa(time.Now().Unix())
			h := headers(vecID, ts, v1aEntry(k.priv, vecID, ts, body))

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := v.Verify(ctx, h, body)
			if got := time.Since(start); got != 100*time.Millisecond {
				t.Errorf("Verify returned after %v, want 100ms", got)
			}
			if !errors.Is(err, ErrJWKSUnavailable) {
				t.Fatalf("Verify error = %v, want ErrJWKSUnavailable", err)
			}

			srv.Release() // the key server answers at last
			synctest.Wait()
			start = time.Now()
			if _, err := v.Verify(context.Background(), h, body); err != nil {
				t.Fatalf("Verify after the key server answered: %v", err)
			}
			if got := time.Since(start); got != 0 {
				t.Errorf("Verify with the keys cached took %v", got)
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("key server saw %d requests, want 1: the first fetch serves the next call", n)
			}
		})
	})
	t.Run("stale keys while the refetch hangs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			k, rotated := newEdKey(t, "ed-1"), newEdKey(t, "ed-2")
			srv := jwkstest.NewTransport(jwksDoc(k.jwk()))
			clock := newClock(time.Now())
			v := mustNew(t, bubbleConfig(srv, clock.Now))
			delivery := func(k edKey) http.Header {
				ts := itoa(clock.Now().Unix())
				return headers(vecID, ts, v1aEntry(k.priv, vecID, ts, body))
			}
			if _, err := v.Verify(context.Background(), delivery(k), body); err != nil {
				t.Fatalf("first delivery: %v", err)
			}

			srv.Hold()
			clock.Advance(time.Hour) // the keys have expired
			start := time.Now()
			for i := range 3 {
				if _, err := v.Verify(context.Background(), delivery(k), body); err != nil {
					t.Fatalf("delivery %d under the stale key: %v", i, err)
				}
			}
			if got := time.Since(start); got != 0 {
				t.Errorf("deliveries under the stale key took %v, want no wait", got)
			}

			// A key the stale set lacks needs the refetch: the caller waits
			// for it until its own deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := v.Verify(ctx, delivery(rotated), body)
			if got := time.Since(start); got != 100*time.Millisecond {
				t.Errorf("Verify returned after %v, want 100ms", got)
			}
			if !errors.Is(err, ErrJWKSUnavailable) {
				t.Errorf("Verify error = %v, want ErrJWKSUnavailable", err)
			}
			if n := srv.Requests(); n != 2 {
				t.Errorf("key server saw %d requests, want 2", n)
			}
			srv.Release()
		})
	})
}
