package verify

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var benchSizes = []struct {
	name string
	n    int
}{{"256B", 256}, {"1KiB", 1 << 10}, {"16KiB", 16 << 10}}

// benchBody returns a JSON-looking body of n bytes.
func benchBody(n int) []byte {
	b := []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","pad":"`)
	for len(b) < n-3 {
		b = append(b, 'x')
	}
	return append(b, `"}}`...)[:n]
}

// BenchmarkVerifyHMAC measures a whole static Verify: header lookup and
// parsing, the timestamp check, one HMAC-SHA256 and the compare.
func BenchmarkVerifyHMAC(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			body := benchBody(size.n)
			v := mustNew(b, Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime)})
			sig, _ := Sign(vecSecret, vecID, vecTime, body)
			h := headers(vecID, vecTimestamp, sig)
			ctx := context.Background()
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			report := cpuPerOp(b)
			for b.Loop() {
				if _, err := v.Verify(ctx, h, body); err != nil {
					b.Fatal(err)
				}
			}
			report()
		})
	}
}

// BenchmarkHMACFloor is the physical floor of BenchmarkVerifyHMAC: one
// reused HMAC-SHA256 state over the same signed bytes, summed into a reused
// buffer, base64-compared with the expected signature.
func BenchmarkHMACFloor(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			body := benchBody(size.n)
			signed := append([]byte(vecID+"."+vecTimestamp+"."), body...)
			sig, _ := Sign(vecSecret, vecID, vecTime, body)
			want := []byte(strings.TrimPrefix(sig, "v1,"))
			mac := hmac.New(sha256.New, mustDecode(b, vecSecret))
			sum := make([]byte, 0, sha256.Size)
			enc := make([]byte, base64.StdEncoding.EncodedLen(sha256.Size))
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			report := cpuPerOp(b)
			for b.Loop() {
				mac.Reset()
				mac.Write(signed)
				sum = mac.Sum(sum[:0])
				base64.StdEncoding.Encode(enc, sum)
				if !hmac.Equal(enc, want) {
					b.Fatal("mismatch")
				}
			}
			report()
		})
	}
}

// BenchmarkVerifyEd25519 measures a whole dynamic v1a Verify with a warm
// key cache holding Google's three Ed25519 keys. signer=key1, key2 and key3
// are genuine deliveries signed by the first, second and third key of the
// JWKS: the Verifier tries the key that verified last first, so once warm
// (one delivery by that key) each costs one ed25519.Verify, whichever key
// signs; compare each with BenchmarkEd25519Floor (1 KiB) or
// BenchmarkEd25519Floor64KiB. signer=forged is a delivery of
// MaxEd25519Entries plausible entries signed by a key the JWKS lacks, each
// entry a full verification, with more (entry, key) pairs than the budget,
// so it is answered as retryable; it costs at most MaxEd25519Checks
// verifications.
//
// verifies/op is the number of Ed25519 verifications per delivery, counted
// by the Verifier: the benchmark fails if a genuine delivery costs more
// than one, or a forged one more than MaxEd25519Checks.
func BenchmarkVerifyEd25519(b *testing.B) {
	keys := []edKey{newEdKey(b, "k1"), newEdKey(b, "k2"), newEdKey(b, "k3")}
	stranger := newEdKey(b, "stranger")
	srv := newJWKSServer(b, keys[0].jwk(), keys[1].jwk(), keys[2].jwk())
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}} {
		body := benchBody(size.n)
		genuine := func(k edKey) http.Header {
			return headers(vecID, vecTimestamp, v1aEntry(k.priv, vecID, vecTimestamp, body))
		}
		forged := strings.Repeat(v1aEntry(stranger.priv, vecID, vecTimestamp, body)+" ", MaxEd25519Entries)
		for _, d := range []struct {
			name      string
			warm, h   http.Header // warm is sent once before the loop
			wantErr   error
			maxChecks int64 // per delivery
		}{
			{"key1", genuine(keys[0]), genuine(keys[0]), nil, 1},
			{"key2", genuine(keys[1]), genuine(keys[1]), nil, 1},
			{"key3", genuine(keys[2]), genuine(keys[2]), nil, 1},
			{"forged", genuine(keys[2]), headers(vecID, vecTimestamp, strings.TrimSpace(forged)), ErrJWKSUnavailable, MaxEd25519Checks},
		} {
			b.Run("signer="+d.name+"/body="+size.name, func(b *testing.B) {
				v := mustNew(b, Config{JWKSURL: srv.url(), HTTPClient: srv.Client(), Now: fixedClock(vecTime)})
				checks := countVerifies(v)
				ctx := context.Background()
				if _, err := v.Verify(ctx, d.warm, body); err != nil { // warm the cache and the key hint
					b.Fatal(err)
				}
				checks.Store(0)
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				report := cpuPerOp(b)
				for b.Loop() {
					if _, err := v.Verify(ctx, d.h, body); !errors.Is(err, d.wantErr) {
						b.Fatal(err)
					}
				}
				report()
				perOp := float64(checks.Load()) / float64(b.N)
				b.ReportMetric(perOp, "verifies/op")
				if perOp > float64(d.maxChecks) {
					b.Fatalf("%.2f Ed25519 verifications per delivery, want at most %d", perOp, d.maxChecks)
				}
			})
		}
	}
}

// BenchmarkEd25519Floor is bare ed25519.Verify over the same signed content.
func BenchmarkEd25519Floor(b *testing.B) {
	k := newEdKey(b, "k1")
	body := benchBody(1 << 10)
	msg := append([]byte(vecID+"."+vecTimestamp+"."), body...)
	sig := ed25519.Sign(k.priv, msg)
	b.ReportAllocs()
	report := cpuPerOp(b)
	for b.Loop() {
		if !ed25519.Verify(k.pub, msg, sig) {
			b.Fatal("mismatch")
		}
	}
	report()
}

// benchJWT returns an RS256 JWT like Google's docs describe and its key.
func benchJWT(b *testing.B) (rsaKey, string) {
	k := newRSAKey(b, "rsa1", 0)
	return k, k.sign(b, jwtClaims(vecTime, "https://example.com/hook"))
}

func jwtClaims(now time.Time, aud string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "https://generativelanguage.googleapis.com",
		"sub": "batches/abc123",
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
}

// BenchmarkVerifyJWT measures a whole JWT Verify with a warm key cache.
func BenchmarkVerifyJWT(b *testing.B) {
	k, token := benchJWT(b)
	srv := newJWKSServer(b, k.jwk())
	v := mustNew(b, Config{JWKSURL: srv.url(), HTTPClient: srv.Client(), Now: fixedClock(vecTime),
		Audience: "https://example.com/hook"})
	body := benchBody(1 << 10)
	h := headers(vecID, vecTimestamp, token)
	ctx := context.Background()
	if _, err := v.Verify(ctx, h, body); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	report := cpuPerOp(b)
	for b.Loop() {
		if _, err := v.Verify(ctx, h, body); err != nil {
			b.Fatal(err)
		}
	}
	report()
}

// BenchmarkRSAFloor is bare rsa.VerifyPKCS1v15 over the SHA-256 of the same
// JWT's signing input.
func BenchmarkRSAFloor(b *testing.B) {
	k, token := benchJWT(b)
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(token[:i])
	b.ReportAllocs()
	report := cpuPerOp(b)
	for b.Loop() {
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(&k.priv.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
	report()
}
