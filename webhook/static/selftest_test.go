package static

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

func TestSelfTest(t *testing.T) {
	e := newEnv(t, nil)
	w := e.register(e.config())
	var rec recorder
	e.serve(w.Handler(rec.handle))
	rep, err := w.SelfTest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := keyID(t, e.store.all()[0]); rep.State != "enabled" || rep.KeyID != want {
		t.Fatalf("Report %+v, want enabled and key %s", rep, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 1 || rec.events[0].Type != geminitest.PingEventType {
		t.Fatalf("HandlerFunc got %d events, want the ping", len(rec.events))
	}
}

// TestSelfTestFailures checks that each way a self-test fails is reported
// as itself.
func TestSelfTestFailures(t *testing.T) {
	quiet := func(s *geminitest.Server) { s.Logf = func(string, ...any) {}; s.Retry = []time.Duration{} }

	t.Run("no handler", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		w := e.register(e.config())
		_, err := w.SelfTest(context.Background())
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "Handler was never called") {
			t.Fatalf("SelfTest: %v, want ErrUnreachable naming Handler", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, quiet)
		cfg := e.config()
		cfg.URI = "http://" + closedAddr(t) + "/gemini/webhook"
		w := e.register(cfg)
		w.Handler((&recorder{}).handle) // built, but not where the URI leads
		_, err := w.SelfTest(shortCtx(t))
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SelfTest: %v, want ErrUnreachable after the deadline", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, quiet)
		w := e.register(e.config())
		e.serve(w.Handler((&recorder{}).handle, webhook.WithLogger(nil)))
		// The secret was rotated elsewhere, revoking the one held here.
		if _, err := e.client.Webhooks.RotateSigningSecret(context.Background(), operations.RotateSigningSecretRequest{
			ID: w.ID, Body: webhooks.RotateSigningSecretRequest{RevocationBehavior: webhooks.RevocationBehaviorRevokePreviousSecretsImmediately.ToPointer()},
		}); err != nil {
			t.Fatal(err)
		}
		rep, err := w.SelfTest(shortCtx(t))
		if !errors.Is(err, ErrNotVerified) || !errors.Is(err, verify.ErrNoMatchingSignature) || rep.KeyID != "" {
			t.Fatalf("SelfTest: %+v, %v; want ErrNotVerified wrapping verify.ErrNoMatchingSignature", rep, err)
		}
	})
	t.Run("handler fails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, quiet)
		w := e.register(e.config())
		e.serve(w.Handler((&recorder{err: errBoom}).handle, webhook.WithLogger(nil)))
		_, err := w.SelfTest(shortCtx(t))
		if !errors.Is(err, ErrNotVerified) || !errors.Is(err, errBoom) {
			t.Fatalf("SelfTest: %v, want ErrNotVerified wrapping the HandlerFunc's error", err)
		}
	})
	t.Run("disabled by hand", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		w := e.register(e.config())
		e.serve(w.Handler((&recorder{}).handle))
		if _, err := e.client.Webhooks.Update(context.Background(), operations.UpdateWebhookRequest{
			ID: w.ID, UpdateMask: new("state"), Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateDisabled.ToPointer()},
		}); err != nil {
			t.Fatal(err)
		}
		rep, err := w.SelfTest(context.Background())
		if !errors.Is(err, ErrDisabled) || rep.State != "disabled" {
			t.Fatalf("SelfTest: %+v, %v; want ErrDisabled, state disabled", rep, err)
		}
	})
	t.Run("forgery does not fail a good ping", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		w := e.register(e.config())
		h := w.Handler((&recorder{}).handle, webhook.WithLogger(nil))
		// Before the genuine ping, a forged v1 delivery reaches the same
		// handler during the self-test: it is refused, and the ping still
		// passes the test.
		var forged atomic.Int32
		e.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"type":"webhook.ping","timestamp":"2026-01-01T00:00:00Z","data":{}}`))
			req.Header.Set("webhook-id", "msg_forged")
			req.Header.Set("webhook-timestamp", ts)
			req.Header.Set("webhook-signature", "v1,"+strings.Repeat("A", 43)+"=")
			fw := httptest.NewRecorder()
			h.ServeHTTP(fw, req)
			if fw.Code == http.StatusUnauthorized {
				forged.Add(1)
			}
			h.ServeHTTP(rw, r)
		}))
		if _, err := w.SelfTest(context.Background()); err != nil {
			t.Fatalf("SelfTest: %v", err)
		}
		if forged.Load() == 0 {
			t.Fatal("the forged delivery was not refused")
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
