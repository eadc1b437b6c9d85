package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genaihook/genaihook/verify"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	svix "github.com/svix/svix-webhooks/go"
)

const (
	// secret is 26 bytes, within the 24 to 64 of Standard Webhooks, but not
	// its public example, which verify.New refuses.
	secret = "whsec_R2VtaW5pV2ViaG9va0JlbmNoU2VjcmV0MDE="
	msgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
)

// delivery returns a 1 KiB body and the headers of a delivery signed now:
// the reference library checks timestamps against time.Now, so both
// benchmarks use the real clock.
func delivery(b *testing.B) (http.Header, []byte) {
	body := []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","pad":"`)
	for len(body) < 1<<10-3 {
		body = append(body, 'x')
	}
	body = append(body, `"}}`...)
	now := time.Now()
	sig, err := verify.Sign(secret, msgID, now, body)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", msgID)
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h, body
}

// BenchmarkStandardWebhooks verifies a 1 KiB delivery with the reference
// library.
func BenchmarkStandardWebhooks(b *testing.B) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		b.Fatal(err)
	}
	benchPeer(b, wh.Verify)
}

// BenchmarkSvix verifies the same delivery with the svix library, which
// reads the webhook-* headers when the svix-* ones are absent.
func BenchmarkSvix(b *testing.B) {
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		b.Fatal(err)
	}
	benchPeer(b, wh.Verify)
}

// benchPeer runs a peer library's verify on the delivery.
func benchPeer(b *testing.B, verify func(body []byte, h http.Header) error) {
	h, body := delivery(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := verify(body, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenaihook verifies the same delivery with verify.Verifier.
func BenchmarkGenaihook(b *testing.B) {
	h, body := delivery(b)
	v, err := verify.New(verify.Config{Secrets: []string{secret}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHMACFloor is the physical floor for both: one reused
// HMAC-SHA256 state over the same signed bytes, summed into a reused buffer
// and base64-compared with the signature (as verify's BenchmarkHMACFloor).
func BenchmarkHMACFloor(b *testing.B) {
	h, body := delivery(b)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		b.Fatal(err)
	}
	signed := append([]byte(h.Get("webhook-id")+"."+h.Get("webhook-timestamp")+"."), body...)
	want := []byte(strings.TrimPrefix(h.Get("webhook-signature"), "v1,"))
	mac := hmac.New(sha256.New, key)
	sum := make([]byte, 0, sha256.Size)
	enc := make([]byte, base64.StdEncoding.EncodedLen(sha256.Size))
	b.SetBytes(int64(len(body)))
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
}
