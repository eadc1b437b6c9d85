package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genaihook/genaihook/verify"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var testNow = time.Date(2026, 1, 22, 12, 0, 5, 0, time.UTC)

func newRealVerifier(t testing.TB) *verify.Verifier {
	t.Helper()
	v, err := verify.New(verify.Config{Secrets: []string{testSecret}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signedDelivery returns a delivery signed as a static Gemini webhook with
// testSecret.
func signedDelivery(t testing.TB, id, body string) *http.Request {
	t.Helper()
	sig, err := verify.Sign(testSecret, id, testNow, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/gemini/webhook", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Webhook-Id", id)
	r.Header.Set("Webhook-Timestamp", strconv.FormatInt(testNow.Unix(), 10))
	r.Header.Set("Webhook-Signature", sig)
	return r
}

func TestHandlerWithRealVerifier(t *testing.T) {
	var logs syncBuffer
	rec := &recorder{}
	h := NewHandler(newRealVerifier(t), rec.fn, WithLogger(testLogger(&logs)), WithBinding(func(context.Context, *Event) error {
		t.Error("binding checked on a static delivery")
		return nil
	}))

	if w := serve(h, signedDelivery(t, "msg_1", testBody)); w.Code != 200 {
		t.Fatalf("signed delivery: %d %q", w.Code, w.Body.String())
	}
	ev := rec.events[0]
	if ev.WebhookID != "msg_1" || ev.Auth.Scheme != verify.SchemeHMAC || ev.Auth.SecretIndex != 0 || !ev.Auth.Timestamp.Equal(testNow) {
		t.Errorf("event auth: id %q, %+v", ev.WebhookID, ev.Auth)
	}
	if w := serve(h, signedDelivery(t, "msg_1", testBody)); w.Code != 200 || w.Body.String() != "duplicate\n" {
		t.Errorf("retry: %d %q", w.Code, w.Body.String())
	}

	// The signature of one body on another.
	tampered := signedDelivery(t, "msg_2", strings.Replace(testBody, "abc123", "abc124", 1))
	sig, _ := verify.Sign(testSecret, "msg_2", testNow, []byte(testBody))
	tampered.Header.Set("Webhook-Signature", sig)
	if w := serve(h, tampered); w.Code != 401 || w.Body.String() != "invalid signature\n" {
		t.Errorf("tampered body: %d %q", w.Code, w.Body.String())
	}
	if strings.Contains(logs.String(), strings.TrimPrefix(sig, "v1,")) {
		t.Error("the signature reached the log")
	}
	if !strings.Contains(logs.String(), "verify:") {
		t.Errorf("log lacks the verifier's reason:\n%s", logs.String())
	}
	if rec.calls() != 1 {
		t.Errorf("HandlerFunc called %d times, want 1", rec.calls())
	}
}
