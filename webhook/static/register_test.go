package static

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

func TestRegisterIdempotentAcrossRestarts(t *testing.T) {
	e := newEnv(t, nil)
	var rec recorder
	first := e.register(e.config())
	if !first.Created || first.ID == "" {
		t.Fatalf("first start: Created %v, ID %q; want a new webhook", first.Created, first.ID)
	}
	if n := len(e.store.all()); n != 1 {
		t.Fatalf("store holds %d secrets after creation, want 1", n)
	}
	for restart := range 3 {
		w := e.register(e.config())
		if w.Created || w.ID != first.ID || w.Reenabled != "" || w.EventsUpdated {
			t.Fatalf("restart %d: %+v; want the same webhook, untouched", restart, w)
		}
		e.serve(w.Handler(rec.handle))
	}
	if got := e.hooks(); !slices.Equal(got, []string{first.ID}) {
		t.Fatalf("webhooks %v, want only %s", got, first.ID)
	}
	if e.store.saves != 1 {
		t.Fatalf("%d secrets saved, want 1 (no rotation on restart)", e.store.saves)
	}
	name := e.finishBatch()
	e.waitIdle()
	if got := rec.ids(); !slices.Equal(got, []string{name}) {
		t.Fatalf("received %v, want [%s]", got, name)
	}
}

// TestRegisterConcurrentStarts starts replicas together, sharing one
// secret store: one webhook must remain, and every replica must verify its
// deliveries.
func TestRegisterConcurrentStarts(t *testing.T) {
	const replicas = 6
	e := newEnv(t, nil)
	cfg := e.config()
	ws := make([]*Webhook, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range ws {
		wg.Go(func() {
			<-start
			w, err := Register(context.Background(), e.client, cfg)
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
				return
			}
			ws[i] = w
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	created := 0
	for _, w := range ws {
		if w.Created {
			created++
		}
	}
	t.Logf("%d of %d replicas created a webhook; %d secrets saved", created, replicas, e.store.saves)
	hooks := e.hooks()
	if len(hooks) != 1 {
		t.Fatalf("webhooks %v after concurrent starts, want one", hooks)
	}
	recs := make([]recorder, replicas)
	for i, w := range ws {
		if w.ID != hooks[0] {
			t.Errorf("replica %d kept %s, want %s", i, w.ID, hooks[0])
		}
		e.serve(w.Handler(recs[i].handle))
		if err := w.Reload(context.Background()); err != nil {
			t.Fatalf("replica %d: Reload: %v", i, err)
		}
	}
	// Every replica verifies a delivery: serve each in turn.
	for i, w := range ws {
		e.serve(w.Handler(recs[i].handle))
		name := e.finishBatch()
		e.waitIdle()
		if got := recs[i].ids(); !slices.Equal(got, []string{name}) {
			t.Errorf("replica %d received %v, want [%s]", i, got, name)
		}
	}
	if f := e.srv.Failed(); len(f) != 0 {
		t.Errorf("%d deliveries failed", len(f))
	}
}

// TestRegisterDeletesDuplicates: a replica that crashed after creating a
// duplicate left it behind; the next Register keeps the oldest.
func TestRegisterDeletesDuplicates(t *testing.T) {
	e := newEnv(t, nil)
	w := e.register(e.config())
	dup, err := e.client.Webhooks.Create(context.Background(), operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		URI: e.config().URI, SubscribedEvents: []webhooks.WebhookSubscribedEvent{"batch.succeeded"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.client.Webhooks.Create(context.Background(), operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		URI: "https://elsewhere.example/hook", SubscribedEvents: []webhooks.WebhookSubscribedEvent{"batch.succeeded"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	again := e.register(e.config())
	if again.ID != w.ID {
		t.Fatalf("kept %s, want the oldest, %s (the duplicate was %s)", again.ID, w.ID, *dup.Webhook.ID)
	}
	if got, want := e.hooks(), []string{w.ID, *other.Webhook.ID}; !slices.Equal(got, want) {
		t.Fatalf("webhooks %v, want %v: the duplicate deleted, the other URI's kept", got, want)
	}
}

func TestRegisterReenablesDisabledWebhook(t *testing.T) {
	e := newEnv(t, func(s *geminitest.Server) {
		s.DisableAfterFailures = 1
		s.Retry = []time.Duration{}
		s.Logf = func(string, ...any) {}
	})
	w := e.register(e.config())
	rec := recorder{err: errBoom}
	e.serve(w.Handler(rec.handle, webhook.WithLogger(nil)))
	e.finishBatch() // answered 500: Gemini gives up and disables the webhook
	e.waitIdle()

	rep, err := w.SelfTest(context.Background())
	if !errors.Is(err, ErrDisabled) || rep.State != "disabled_due_to_failed_deliveries" {
		t.Fatalf("SelfTest: %v, state %q; want ErrDisabled and disabled_due_to_failed_deliveries", err, rep.State)
	}

	var logs logSink
	cfg := e.config()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	again := e.register(cfg)
	if again.Reenabled != "disabled_due_to_failed_deliveries" {
		t.Fatalf("Reenabled %q, want disabled_due_to_failed_deliveries", again.Reenabled)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "disabled the webhook after failed deliveries") {
		t.Fatalf("re-enabling was not logged loudly:\n%s", logs.String())
	}
	for _, s := range e.store.all() {
		if strings.Contains(logs.String(), s[len("whsec_"):]) {
			t.Fatal("a secret was logged")
		}
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	e.serve(again.Handler(rec.handle))
	if rep, err := again.SelfTest(context.Background()); err != nil || rep.State != "enabled" {
		t.Fatalf("SelfTest after Register: %+v, %v; want enabled and passing", rep, err)
	}
}

func TestRegisterUpdatesEvents(t *testing.T) {
	e := newEnv(t, nil)
	cfg := e.config()
	cfg.Events = []webhook.EventType{webhook.BatchSucceeded}
	e.register(cfg)
	cfg.Events = []webhook.EventType{webhook.BatchSucceeded, webhook.VideoGenerated}
	w := e.register(cfg)
	if !w.EventsUpdated {
		t.Fatal("EventsUpdated false after the events changed")
	}
	res, err := e.client.Webhooks.Get(context.Background(), operations.GetWebhookRequest{ID: w.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Webhook.SubscribedEvents; !slices.Equal(got, []webhooks.WebhookSubscribedEvent{"batch.succeeded", "video.generated"}) {
		t.Fatalf("subscribed events %v", got)
	}
	if w := e.register(cfg); w.EventsUpdated {
		t.Fatal("EventsUpdated true with the same events")
	}
}

func TestRegisterSaveFailureLeavesNoWebhook(t *testing.T) {
	e := newEnv(t, nil)
	e.store.saveErr = errBoom
	_, err := Register(context.Background(), e.client, e.config())
	if !errors.Is(err, errBoom) {
		t.Fatalf("Register: %v, want the store's error", err)
	}
	if got := e.hooks(); len(got) != 0 {
		t.Fatalf("webhooks %v left whose secret nobody holds", got)
	}
}

// TestRegisterRecoversLostSecret: the webhook exists but the store holds
// none of its secrets (lost, or another replica has not saved it yet).
func TestRegisterRecoversLostSecret(t *testing.T) {
	e := newEnv(t, nil)
	lost := e.register(e.config())
	e.store.mu.Lock()
	e.store.secrets = []string{"whsec_" + strings.Repeat("QUJD", 8)} // not the webhook's
	e.store.mu.Unlock()

	w := e.register(e.config())
	if w.ID != lost.ID || w.Created {
		t.Fatalf("Register made a new webhook (%s) instead of keeping %s", w.ID, lost.ID)
	}
	var rec recorder
	e.serve(w.Handler(rec.handle))
	if _, err := w.SelfTest(context.Background()); err != nil {
		t.Fatalf("SelfTest after recovery: %v", err)
	}
}

func TestRegisterConfigErrors(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no URI", func(c *Config) { c.URI = "" }, "URI"},
		{"no store", func(c *Config) { c.Secrets = nil }, "Secrets"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.config()
			tt.edit(&cfg)
			if _, err := Register(context.Background(), e.client, cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register: %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if _, err := Register(context.Background(), nil, e.config()); err == nil {
		t.Fatal("Register with a nil client: no error")
	}
}

// TestRegisterSecretFromVerifyConfig: a secret given in Config.Verify (from
// an environment variable, say) is held like a stored one.
func TestRegisterSecretFromVerifyConfig(t *testing.T) {
	e := newEnv(t, nil)
	first := e.register(e.config())
	cfg := e.config()
	empty := &memStore{}
	cfg.Secrets = empty
	cfg.Verify.Secrets = e.store.all()
	w := e.register(cfg)
	if w.ID != first.ID || empty.saves != 0 {
		t.Fatalf("Register rotated (%d saves) although Config.Verify held the secret", empty.saves)
	}
	e.serve(w.Handler((&recorder{}).handle))
	if _, err := w.SelfTest(context.Background()); err != nil {
		t.Fatal(err)
	}
}
