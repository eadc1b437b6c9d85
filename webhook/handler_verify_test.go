package webhook

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genaihook/genaihook/verify"
)

const testSecret = "whsec_9R2wyjJke2knBl9fkzSrO0K5BB7igcdwfIDpXUdbh7g="

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

// jwksServer serves a JWK Set holding one Ed25519 key, or 503 while down.
type jwksServer struct {
	pub  ed25519.PublicKey
	down atomic.Bool
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if s.down.Load() {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","alg":"EdDSA","use":"sig","x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(s.pub))
}

// TestHandlerKeyEndpointDown: with a real Verifier whose JWKS endpoint
// answers 503, a dynamic delivery is answered 503 with Retry-After and
// logged as an error, never 401; Gemini's retry, once the endpoint is back
// and the refetch interval has passed, is accepted. A static delivery at
// the same verifier is unaffected.
func TestHandlerKeyEndpointDown(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := &jwksServer{pub: pub}
	keys.down.Store(true)
	srv := httptest.NewServer(keys)
	defer srv.Close()

	var now atomic.Pointer[time.Time]
	now.Store(&testNow)
	clock := func() time.Time { return *now.Load() }
	v, err := verify.New(verify.Config{Secrets: []string{testSecret}, JWKSURL: srv.URL + "/jwks.json", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	binder := newTestBinder(t, 1)
	md, _ := json.Marshal(binder.Metadata("job-1"))
	body := `{"type":"interaction.completed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"v1_abc","user_metadata":` + string(md) + `}}`

	dynamic := func() *http.Request {
		ts := strconv.FormatInt(clock().Unix(), 10)
		sig := ed25519.Sign(priv, []byte("msg_1."+ts+"."+body))
		r := httptest.NewRequest(http.MethodPost, "/gemini/webhook", strings.NewReader(body))
		r.Header.Set("Webhook-Id", "msg_1")
		r.Header.Set("Webhook-Timestamp", ts)
		r.Header.Set("Webhook-Signature", "v1a,"+base64.StdEncoding.EncodeToString(sig))
		return r
	}
	static := func() *http.Request { return signedDelivery(t, "msg_static", testBody) }

	var logs syncBuffer
	rec := &recorder{}
	h := NewHandler(v, rec.fn, WithBinding(binder.Check), WithLogger(testLogger(&logs)))

	steps := []struct {
		name       string
		down       bool
		advance    time.Duration
		req        func() *http.Request
		code       int
		retryAfter string
		logHas     string
	}{
		{"endpoint down", true, 0, dynamic, 503, "30", `level=ERROR msg="webhook: cannot verify now (signing keys unavailable, or not all checked)`},
		{"still down, retry", true, 30 * time.Second, dynamic, 503, "30", "HTTP status 503"},
		{"static unaffected", true, 0, static, 200, "", ""},
		{"back, within the refetch interval", false, time.Second, dynamic, 503, "30", ""},
		{"back, retry after Retry-After", false, 30 * time.Second, dynamic, 200, "", ""},
		{"Gemini's next retry is a duplicate", false, time.Second, dynamic, 200, "", ""},
	}
	for _, st := range steps {
		keys.down.Store(st.down)
		next := clock().Add(st.advance)
		now.Store(&next)
		w := serve(h, st.req())
		if w.Code != st.code || w.Header().Get("Retry-After") != st.retryAfter {
			t.Errorf("%s: %d %q, Retry-After %q; want %d, Retry-After %q", st.name, w.Code, w.Body.String(), w.Header().Get("Retry-After"), st.code, st.retryAfter)
		}
		if st.logHas != "" && !strings.Contains(logs.String(), st.logHas) {
			t.Errorf("%s: log lacks %q:\n%s", st.name, st.logHas, logs.String())
		}
	}
	if rec.calls() != 2 {
		t.Errorf("HandlerFunc called %d times, want 2 (the static delivery and the dynamic one once)", rec.calls())
	}
	if strings.Contains(logs.String(), "level=WARN msg=\"webhook: delivery rejected\"") {
		t.Errorf("a key-endpoint outage was logged as a rejection:\n%s", logs.String())
	}
}

// TestHandlerBindingWithRealVerifier: a genuine v1a delivery, signed with
// the keys a real Verifier fetched, is refused without a binding check and
// accepted with a Binder whose token is in the event's user_metadata.
func TestHandlerBindingWithRealVerifier(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&jwksServer{pub: pub})
	defer srv.Close()
	v, err := verify.New(verify.Config{JWKSURL: srv.URL + "/jwks.json", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	binder := newTestBinder(t, 1)
	withMetadata := func(md map[string]any) string {
		b, _ := json.Marshal(md)
		return `{"type":"video.generated","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"models/veo/operations/o1","user_metadata":` + string(b) + `}}`
	}
	deliver := func(h http.Handler, id, body string) int {
		ts := strconv.FormatInt(testNow.Unix(), 10)
		sig := ed25519.Sign(priv, []byte(id+"."+ts+"."+body))
		r := httptest.NewRequest(http.MethodPost, "/gemini/webhook", strings.NewReader(body))
		r.Header.Set("Webhook-Id", id)
		r.Header.Set("Webhook-Timestamp", ts)
		r.Header.Set("Webhook-Signature", "v1a,"+base64.StdEncoding.EncodeToString(sig))
		return serve(h, r).Code
	}
	tests := []struct {
		name string
		opts []Option
		body string
		want int
	}{
		{"no binding configured", nil, withMetadata(binder.Metadata("job-1")), 403},
		{"binder, own token", []Option{WithBinding(binder.Check)}, withMetadata(binder.Metadata("job-1")), 200},
		{"binder, foreign job", []Option{WithBinding(binder.Check)}, withMetadata(map[string]any{"customer": "acme"}), 403},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := NewHandler(v, rec.fn, append(tt.opts, WithLogger(nil))...)
			if got := deliver(h, fmt.Sprintf("msg_%d", i), tt.body); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			if (tt.want == 200) != (rec.calls() == 1) {
				t.Errorf("HandlerFunc called %d times", rec.calls())
			}
		})
	}
}

// TestNewHandlerWarnsRealVerifier: a real dynamic Verifier without a
// binding check draws the construction warning; a static one does not.
func TestNewHandlerWarnsRealVerifier(t *testing.T) {
	dyn, err := verify.New(verify.Config{JWKSURL: "http://127.0.0.1:1/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := any(dyn).(interface{ AcceptsDynamic() bool }); !ok {
		t.Fatal("*verify.Verifier has no AcceptsDynamic method: NewHandler cannot warn that a dynamic Verifier lacks a binding check")
	}
	tests := []struct {
		name string
		v    *verify.Verifier
		opts []Option
		warn bool
	}{
		{"dynamic, no binding", dyn, nil, true},
		{"dynamic, binder", dyn, []Option{WithBinding(newTestBinder(t, 1).Check)}, false},
		{"static, no binding", newRealVerifier(t), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			NewHandler(tt.v, func(context.Context, *Event) error { return nil }, append(tt.opts, WithLogger(testLogger(&logs)))...)
			if got := strings.Contains(logs.String(), "every dynamic delivery will be refused"); got != tt.warn {
				t.Errorf("warned %v, want %v:\n%s", got, tt.warn, logs.String())
			}
		})
	}
}
