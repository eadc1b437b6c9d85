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
	"testing/synctest"
	"time"

	"github.com/genaihook/genaihook/internal/jwks/jwkstest"
	"github.com/genaihook/genaihook/verify"
)

// blockingDedup is a Deduplicator that records the deadline it was given.
type blockingDedup struct {
	deadline *time.Time
}

func (d blockingDedup) Begin(ctx context.Context, _ string) (func(bool), bool, error) {
	*d.deadline, _ = ctx.Deadline()
	return func(bool) {}, false, nil
}

// TestHandlerBudgetCoversEverything checks, on the clock of a synctest
// bubble, that the time budget covers Verify, the binding check,
// deduplication and the HandlerFunc: each gets the same deadline, and a
// Verify or a binding check that waits until ctx ends is answered 503 at
// the deadline, so that Gemini retries rather than wait or see a refusal.
func TestHandlerBudgetCoversEverything(t *testing.T) {
	const budget = 2 * time.Second
	dynamic := verifierFunc(func(context.Context, http.Header, []byte) (verify.Result, error) {
		return verify.Result{Scheme: verify.SchemeEd25519, WebhookID: "msg_1", SecretIndex: -1}, nil
	})
	hangingVerifier := verifierFunc(func(ctx context.Context, _ http.Header, _ []byte) (verify.Result, error) {
		<-ctx.Done()
		return verify.Result{}, fmt.Errorf("key store: %w", ctx.Err())
	})
	hangingCheck := func(ctx context.Context, _ *Event) error {
		<-ctx.Done()
		return fmt.Errorf("job store: %w", ctx.Err())
	}
	// A check that reports "not bound" because it could not look the job
	// up in time: still undecided.
	lateRejection := func(ctx context.Context, _ *Event) error {
		<-ctx.Done()
		return fmt.Errorf("%w: job not found before %w", ErrNotBound, ctx.Err())
	}
	tests := []struct {
		name   string
		v      Verifier
		check  BindingCheck
		logHas string
	}{
		{"Verify waits until ctx ends", hangingVerifier, nil, "verification exceeded the time budget"},
		{"binding check waits until ctx ends", dynamic, hangingCheck, "binding check exceeded the time budget"},
		{"binding check rejects once ctx ended", dynamic, lateRejection, "binding check exceeded the time budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs syncBuffer
				rec := &recorder{}
				h := NewHandler(tt.v, rec.fn, WithTimeout(budget), WithBinding(tt.check), WithLogger(testLogger(&logs)))
				// The client would wait far longer than the budget.
				ctx, cancel := context.WithTimeout(context.Background(), 10*budget)
				defer cancel()
				start := time.Now()
				w := serve(h, dynamicDelivery("msg_1", testBody).WithContext(ctx))
				if got := time.Since(start); got != budget {
					t.Errorf("answered after %v, want the budget %v", got, budget)
				}
				if w.Code != http.StatusServiceUnavailable || w.Body.String() != msgTimeout {
					t.Errorf("answer %d %q, want 503 %q", w.Code, w.Body.String(), msgTimeout)
				}
				if rec.calls() != 0 {
					t.Errorf("HandlerFunc called %d times, want 0", rec.calls())
				}
				if !strings.Contains(logs.String(), tt.logHas) {
					t.Errorf("log lacks %q:\n%s", tt.logHas, logs.String())
				}
			})
		})
	}

	t.Run("one deadline for every step", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var verifyDL, checkDL, dedupDL, fnDL time.Time
			v := verifierFunc(func(ctx context.Context, h http.Header, b []byte) (verify.Result, error) {
				verifyDL, _ = ctx.Deadline()
				return dynamic(ctx, h, b)
			})
			check := func(ctx context.Context, _ *Event) error { checkDL, _ = ctx.Deadline(); return nil }
			fn := func(ctx context.Context, _ *Event) error { fnDL, _ = ctx.Deadline(); return nil }
			h := NewHandler(v, fn, WithTimeout(budget), WithBinding(check),
				WithDeduplicator(blockingDedup{&dedupDL}), WithLogger(nil))
			want := time.Now().Add(budget)
			if w := serve(h, dynamicDelivery("msg_1", testBody)); w.Code != http.StatusOK {
				t.Fatalf("answer %d %q, want 200", w.Code, w.Body.String())
			}
			for name, got := range map[string]time.Time{"Verify": verifyDL, "binding check": checkDL, "Deduplicator": dedupDL, "HandlerFunc": fnDL} {
				if !got.Equal(want) {
					t.Errorf("%s saw deadline %v, want %v", name, got, want)
				}
			}
		})
	})
}

// TestHandlerKeyServerHangs checks, on the clock of a synctest bubble, that
// a real Verifier whose key server never answers holds the delivery no
// longer than the time budget, answers 503 with Retry-After, and that
// Gemini's retry is served by the fetch the first delivery started.
func TestHandlerKeyServerHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := json.Marshal(map[string]any{"keys": []map[string]any{{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
			"x": base64.RawURLEncoding.EncodeToString(pub)}}})
		keys := jwkstest.NewTransport(doc)
		keys.Hold()
		defer keys.Release()
		v, err := verify.New(verify.Config{JWKSURL: "https://keys.example/jwks.json", HTTPClient: keys.Client()})
		if err != nil {
			t.Fatal(err)
		}
		binder := newTestBinder(t, 1)
		md, _ := json.Marshal(binder.Metadata("job-1"))
		body := `{"type":"interaction.completed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"v1_abc","user_metadata":` + string(md) + `}}`
		deliver := func() *http.Request {
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			r := httptest.NewRequest(http.MethodPost, "/gemini/webhook", strings.NewReader(body))
			r.Header.Set("Webhook-Id", "msg_1")
			r.Header.Set("Webhook-Timestamp", ts)
			r.Header.Set("Webhook-Signature", "v1a,"+base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte("msg_1."+ts+"."+body))))
			return r
		}
		var calls atomic.Int32
		h := NewHandler(v, func(context.Context, *Event) error { calls.Add(1); return nil }, WithBinding(binder.Check), WithLogger(nil))

		start := time.Now()
		w := serve(h, deliver())
		if got := time.Since(start); got != DefaultTimeout {
			t.Errorf("answered after %v, want the budget %v", got, DefaultTimeout)
		}
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "30" {
			t.Errorf("while the key server hangs: %d %q, Retry-After %q; want 503, 30", w.Code, w.Body.String(), w.Header().Get("Retry-After"))
		}

		keys.Release()
		synctest.Wait()
		if w := serve(h, deliver()); w.Code != http.StatusOK {
			t.Errorf("retry once the key server answered: %d %q, want 200", w.Code, w.Body.String())
		}
		if n, c := keys.Requests(), calls.Load(); n != 1 || c != 1 {
			t.Errorf("key server saw %d requests, HandlerFunc %d calls; want 1 and 1", n, c)
		}
	})
}
