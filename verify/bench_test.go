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
			for b.Loop() {
				if _, err := v.Verify(ctx, h, body); err != nil {
					b.Fatal(err)
				}
			}
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
			for b.Loop() {
				mac.Reset()
				mac.Write(signed)
				sum = mac.Sum(sum[:0])
				base64.StdEncoding.Encode(enc, sum)
				if !hmac.Equal(enc, want) {
					b.Fatal("mismatch")
				}
			}
		})
	}
}

// BenchmarkVerifyEd25519 measures a whole dynamic v1a Verify with a warm
// key cache holding Google's three Ed25519 keys, the genuine deliveries
// signed by the third of them, against a forged delivery of
// MaxEd25519Entries plausible entries (signatures by a key the JWKS lacks,
// which cost a full verification each; with more pairs than the budget, it
// is answered as retryable). The forged one should cost at most
// MaxEd25519Checks times the genuine one: compare with benchstat.
func BenchmarkVerifyEd25519(b *testing.B) {
	keys := []edKey{newEdKey(b, "k1"), newEdKey(b, "k2"), newEdKey(b, "k3")}
	stranger := newEdKey(b, "stranger")
	srv := newJWKSServer(b, keys[0].jwk(), keys[1].jwk(), keys[2].jwk())
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}} {
		body := benchBody(size.n)
		genuine := headers(vecID, vecTimestamp, v1aEntry(keys[2].priv, vecID, vecTimestamp, body))
		forged := strings.Repeat(v1aEntry(stranger.priv, vecID, vecTimestamp, body)+" ", MaxEd25519Entries)
		for _, d := range []struct {
			name    string
			h       map[string][]string
			wantErr error
		}{
			{"genuine", genuine, nil},
			{"forged", headers(vecID, vecTimestamp, strings.TrimSpace(forged)), ErrJWKSUnavailable},
		} {
			b.Run("delivery="+d.name+"/body="+size.name, func(b *testing.B) {
				v := mustNew(b, Config{JWKSURL: srv.url(), HTTPClient: srv.Client(), Now: fixedClock(vecTime)})
				ctx := context.Background()
				if _, err := v.Verify(ctx, genuine, body); err != nil { // warm the cache and the key hint
					b.Fatal(err)
				}
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, d.h, body); !errors.Is(err, d.wantErr) {
						b.Fatal(err)
					}
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
	for b.Loop() {
		if !ed25519.Verify(k.pub, msg, sig) {
			b.Fatal("mismatch")
		}
	}
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
	for b.Loop() {
		if _, err := v.Verify(ctx, h, body); err != nil {
			b.Fatal(err)
		}
	}
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
	for b.Loop() {
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(&k.priv.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}
