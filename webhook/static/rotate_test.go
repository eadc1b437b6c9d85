package static

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// TestRotateUnderLoad rotates the secret while jobs keep finishing, with
// Gemini's retries turned off so that a refused delivery is lost: each
// must verify, under the old secret before, both during, the new one
// after; then the overlap ends and only the new one remains.
func TestRotateUnderLoad(t *testing.T) {
	e := newEnv(t, func(s *geminitest.Server) { s.Retry = []time.Duration{} })
	w := e.register(e.config())
	var rec recorder
	e.serve(w.Handler(rec.handle))
	old := e.store.all()[0]

	var (
		mu       sync.Mutex
		finished []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	rotated := make(chan struct{})
	wg.Go(func() {
		after := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			name := e.finishBatch()
			mu.Lock()
			finished = append(finished, name)
			mu.Unlock()
			select {
			case <-rotated:
				if after++; after == 20 {
					return
				}
			default:
			}
		}
	})
	// Let some jobs finish under the old secret, then rotate mid-stream.
	for {
		mu.Lock()
		n := len(finished)
		mu.Unlock()
		if n >= 10 {
			break
		}
		e.waitIdle()
	}
	if err := w.Rotate(context.Background(), webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24); err != nil {
		t.Fatal(err)
	}
	close(rotated)
	wg.Wait()
	close(stop)
	e.waitIdle()

	if f := e.srv.Failed(); len(f) != 0 {
		t.Fatalf("%d deliveries refused during the rotation, first: %v", len(f), f[0].Err)
	}
	got, want := rec.ids(), slices.Clone(finished)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("received %d events, want the %d jobs finished", len(got), len(want))
	}
	t.Logf("%d deliveries across the rotation, none refused", len(got))

	secrets := e.store.all()
	if len(secrets) != 2 || secrets[0] != old {
		t.Fatalf("store holds %d secrets, want the old one and the new one", len(secrets))
	}
	next := secrets[1]
	w.mu.Lock()
	keyring := slices.Clone(w.keyring)
	w.mu.Unlock()
	if len(keyring) != 2 {
		t.Fatalf("keyring of %d secrets during the overlap, want 2", len(keyring))
	}
	for _, s := range keyring {
		if s.Value == old && !s.Expires.After(e.clock.Now().Add(23*time.Hour)) {
			t.Errorf("old secret expires %v, want Gemini's expire_time, 24 hours on", s.Expires)
		}
		if s.Value == next && !s.Expires.IsZero() {
			t.Errorf("new secret expires %v, want never", s.Expires)
		}
	}
	rep, err := w.SelfTest(context.Background())
	if err != nil || rep.KeyID != keyID(t, next) {
		t.Fatalf("SelfTest after rotation: %+v, %v; want the new secret to verify", rep, err)
	}

	// The overlap ends: Gemini stops signing with the old secret, and the
	// keyring drops it.
	e.clock.Advance(24 * time.Hour)
	if err := w.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	keyring = slices.Clone(w.keyring)
	w.mu.Unlock()
	if len(keyring) != 1 || keyring[0].Value != next {
		t.Fatalf("keyring after the overlap holds %d secrets, want only the new one", len(keyring))
	}
	name := e.finishBatch()
	e.waitIdle()
	if f := e.srv.Failed(); len(f) != 0 || !slices.Contains(rec.ids(), name) {
		t.Fatalf("delivery after the overlap not received (%d failed)", len(f))
	}
}

func TestRotateImmediately(t *testing.T) {
	e := newEnv(t, func(s *geminitest.Server) { s.Retry = []time.Duration{} })
	w := e.register(e.config())
	var rec recorder
	e.serve(w.Handler(rec.handle))
	old := e.store.all()[0]
	if err := w.Rotate(context.Background(), webhooks.RevocationBehaviorRevokePreviousSecretsImmediately); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	keyring := slices.Clone(w.keyring)
	w.mu.Unlock()
	if len(keyring) != 1 || keyring[0].Value == old {
		t.Fatalf("keyring holds %d secrets after an immediate revocation, want only the new one", len(keyring))
	}
	// A delivery signed with the old secret only is refused now.
	ts := e.clock.Now()
	sig, err := verify.Sign(old, "msg_old", ts, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	h := map[string][]string{"Webhook-Id": {"msg_old"}, "Webhook-Timestamp": {itoa(ts.Unix())}, "Webhook-Signature": {sig}}
	if _, err := w.v.Verify(context.Background(), h, []byte(`{}`)); !errors.Is(err, verify.ErrNoMatchingSignature) {
		t.Fatalf("old secret after immediate revocation: %v, want ErrNoMatchingSignature", err)
	}
	name := e.finishBatch()
	e.waitIdle()
	if !slices.Contains(rec.ids(), name) {
		t.Fatal("delivery after the rotation not received")
	}
}

func TestRotateSaveFailureKeepsSecretInProcess(t *testing.T) {
	e := newEnv(t, func(s *geminitest.Server) { s.Retry = []time.Duration{} })
	w := e.register(e.config())
	var rec recorder
	e.serve(w.Handler(rec.handle))
	e.store.mu.Lock()
	e.store.saveErr = errBoom
	e.store.mu.Unlock()
	err := w.Rotate(context.Background(), webhooks.RevocationBehaviorRevokePreviousSecretsImmediately)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Rotate: %v, want the store's error", err)
	}
	name := e.finishBatch()
	e.waitIdle()
	if !slices.Contains(rec.ids(), name) {
		t.Fatal("the new secret was not installed although Save failed")
	}
}

func TestReloadPicksUpAnotherReplicasRotation(t *testing.T) {
	e := newEnv(t, func(s *geminitest.Server) { s.Retry = []time.Duration{} })
	a := e.register(e.config())
	b := e.register(e.config())
	if err := a.Rotate(context.Background(), webhooks.RevocationBehaviorRevokePreviousSecretsImmediately); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	e.serve(b.Handler(rec.handle, webhook.WithLogger(nil)))
	if _, err := b.SelfTest(shortCtx(t)); !errors.Is(err, ErrNotVerified) || !errors.Is(err, verify.ErrNoMatchingSignature) {
		t.Fatalf("replica b before Reload: %v, want ErrNotVerified wrapping verify.ErrNoMatchingSignature", err)
	}
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SelfTest(context.Background()); err != nil {
		t.Fatalf("replica b after Reload: %v", err)
	}
}

func TestReloadNoSecret(t *testing.T) {
	e := newEnv(t, nil)
	w := e.register(e.config())
	// Someone rotates behind the process's back, revoking what it holds.
	if _, err := e.client.Webhooks.RotateSigningSecret(context.Background(), operations.RotateSigningSecretRequest{
		ID: w.ID, Body: webhooks.RotateSigningSecretRequest{RevocationBehavior: webhooks.RevocationBehaviorRevokePreviousSecretsImmediately.ToPointer()},
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(context.Background()); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Reload: %v, want ErrNoSecret", err)
	}
}

func TestMatch(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a, b, c := "whsec_AAAAbbbbccccdddd", "whsec_BBBBbbbbccccdddd", "whsec_CCCCbbbbccccdddd"
	entry := func(trunc string, exp *time.Time) webhooks.SigningSecret {
		return webhooks.SigningSecret{TruncatedSecret: &trunc, ExpireTime: exp}
	}
	for _, tt := range []struct {
		name           string
		secrets        []string
		listed         []webhooks.SigningSecret
		want           []verify.Secret
		wantUnderstood bool
	}{
		{"current and expiring", []string{a, b, c}, []webhooks.SigningSecret{entry("whsec_BBBB...", nil), entry("whsec_AAAA...", &at)},
			[]verify.Secret{{Value: b}, {Value: a, Expires: at}}, true},
		{"duplicates and blanks", []string{a, " ", a}, []webhooks.SigningSecret{entry("whsec_AAAA…", nil)},
			[]verify.Secret{{Value: a}}, true},
		{"none listed matches", []string{c}, []webhooks.SigningSecret{entry("whsec_AAAA...", nil)}, nil, true},
		{"unknown truncation", []string{a, b}, []webhooks.SigningSecret{entry("****", nil)},
			[]verify.Secret{{Value: a}, {Value: b}}, false},
		{"empty listing", []string{a}, nil, []verify.Secret{{Value: a}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, understood := match(tt.secrets, tt.listed)
			if !slices.Equal(got, tt.want) || understood != tt.wantUnderstood {
				t.Fatalf("match = %v, %v; want %v, %v", got, understood, tt.want, tt.wantUnderstood)
			}
		})
	}
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}
