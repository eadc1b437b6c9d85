package verify_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/genaihook/genaihook/verify"
)

// A static webhook: the secret is the whsec_ value Gemini returned when the
// webhook was created (Webhooks.Create) or rotated.
func ExampleNew() {
	v, err := verify.New(verify.Config{
		Secrets: []string{"whsec_XQsHKNNw23ERxtXjS1aBQCn/TiGUJS//ZxYQQja2wgo="},
	})
	if err != nil {
		panic(err) // a bad secret fails here, not at the first delivery
	}
	_ = v // share v between requests: it is safe for concurrent use

	_, err = verify.New(verify.Config{Secrets: []string{"whsec_not base64!"}})
	fmt.Println(err)
	// The Standard Webhooks documentation's example secret: anyone can sign with it.
	_, err = verify.New(verify.Config{Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
	fmt.Println(err)
	// Output:
	// verify: bad configuration: Secrets[0]: secret is not base64 (after the optional whsec_ prefix)
	// verify: bad configuration: Secrets[0]: secret is the public Standard Webhooks example secret (whsec_MfKQ9r8G...), a test vector anyone can sign with; use the secret Gemini returned for your webhook
}

func ExampleVerifier_Verify() {
	const secret = "whsec_XQsHKNNw23ERxtXjS1aBQCn/TiGUJS//ZxYQQja2wgo="
	now := time.Date(2026, 1, 22, 12, 0, 0, 0, time.UTC)
	v, err := verify.New(verify.Config{
		Secrets: []string{secret},
		Now:     func() time.Time { return now }, // omit in production
	})
	if err != nil {
		panic(err)
	}

	// A delivery as Gemini would send it.
	body := []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123"}}`)
	sig, err := verify.Sign(secret, "msg_2", now, body)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_2")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)

	res, err := v.Verify(context.Background(), h, body)
	if err != nil {
		fmt.Println("rejected:", err) // answer 401
		return
	}
	fmt.Println(res.Scheme, res.WebhookID, res.SecretIndex, res.KeyID, res.Scheme.Dynamic())

	// The same delivery replayed ten minutes later.
	now = now.Add(10 * time.Minute)
	_, err = v.Verify(context.Background(), h, body)
	fmt.Println(err)
	// Output:
	// v1 msg_2 0 sha256:e204c2f9d224874e false
	// verify: timestamp too old: webhook-timestamp is more than 5m0s before the verifier's clock
}

// A dynamic webhook: deliveries are signed with Google's keys, fetched from
// the JWKS URL (verify.GeminiJWKSURL in production). Here a local server
// plays Google.
func ExampleVerifier_Verify_dynamic() {
	priv := ed25519.NewKeyFromSeed([]byte("an example seed, 32 bytes long!!"))
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]any{{
		"kty": "OKP", "crv": "Ed25519", "kid": "google-key-1",
		"x": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)),
	}}})
	google := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	defer google.Close()

	now := time.Date(2026, 1, 22, 12, 0, 0, 0, time.UTC)
	v, err := verify.New(verify.Config{
		JWKSURL:    google.URL, // verify.GeminiJWKSURL in production
		HTTPClient: google.Client(),
		Now:        func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}

	// A delivery as live dynamic webhooks carry it: a v1a Ed25519 signature
	// over webhook-id.webhook-timestamp.body.
	body := []byte(`{"type":"video.generated","version":"v1","data":{"id":"models/veo/operations/op1"}}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := ed25519.Sign(priv, []byte("msg_3."+ts+"."+string(body)))
	h := http.Header{}
	h.Set("webhook-id", "msg_3")
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1a,"+base64.StdEncoding.EncodeToString(sig))

	res, err := v.Verify(context.Background(), h, body)
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	// A dynamic signature proves Google sent the delivery, not that it was
	// meant for this receiver: check a receiver-bound token in user_metadata
	// before acting on it.
	fmt.Println(res.Scheme, res.WebhookID, res.KeyID, res.Scheme.Dynamic())
	// Output:
	// v1a msg_3 google-key-1 true
}

// Secrets that change while the Verifier serves: the keyring is re-read
// from wherever the caller keeps it (here an environment variable, on
// SIGHUP in a real program) and swapped in; deliveries in flight finish
// with the keyring they started with.
func ExampleVerifier_SetKeyring() {
	const old = "whsec_XQsHKNNw23ERxtXjS1aBQCn/TiGUJS//ZxYQQja2wgo="
	const next = "whsec_3rL5pwKpEXrgxy0DSiD9r5BqoT8jwKEJrTvFgP1cYQE="
	now := time.Date(2026, 1, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now } // omit in production
	v, err := verify.New(verify.Config{Secrets: []string{old}, Now: clock})
	if err != nil {
		panic(err)
	}

	// After Webhooks.RotateSigningSecret with revoke_previous_secrets_after_h24,
	// Gemini signs with both for 24 hours: hold both, the old one with the
	// expire_time the webhook's signing_secrets give it.
	os.Setenv("GEMINI_WEBHOOK_SECRETS", next+" "+old)
	keyring := []verify.Secret{}
	for i, s := range strings.Fields(os.Getenv("GEMINI_WEBHOOK_SECRETS")) {
		k := verify.Secret{Value: s}
		if i > 0 {
			k.Expires = now.Add(24 * time.Hour)
		}
		keyring = append(keyring, k)
	}
	if err := v.SetKeyring(keyring); err != nil {
		panic(err) // a bad secret is refused, and the old keyring kept
	}

	body := []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123"}}`)
	for _, secret := range []string{old, next} {
		sig, _ := verify.Sign(secret, "msg_3", now, body)
		h := http.Header{}
		h.Set("webhook-id", "msg_3")
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", sig)
		res, err := v.Verify(context.Background(), h, body)
		fmt.Println(res.SecretIndex, err)
	}
	fmt.Println(v.SetKeyring(nil))
	// Output:
	// 1 <nil>
	// 0 <nil>
	// verify: bad configuration: keyring is empty and no JWKSURL is configured, so no delivery could verify: keep the current secret
}
