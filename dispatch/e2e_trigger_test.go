package dispatch_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// triggerAndFinish starts an interaction on g's side from a template
// carrying wc, as a scheduled trigger does, finishes it, and returns its id
// and the deliveries of its event once settled.
func triggerAndFinish(t *testing.T, g *fakeGemini, wc *interactions.WebhookConfig) (string, []geminitest.Delivery) {
	t.Helper()
	in := interactions.NewInteractionsInput("daily digest")
	id, err := g.Trigger(interactions.CreateAgentInteraction{
		Agent: interactions.AgentOptionDeepResearchPreview042026, Input: &in, WebhookConfig: wc,
	})
	if err != nil {
		t.Fatal(err)
	}
	g.finish(t, id, geminitest.Succeed)
	return id, g.idle(t, id)
}

// attemptStatuses returns the status of each attempt of the deliveries ds.
func attemptStatuses(ds []geminitest.Delivery) []int {
	var codes []int
	for _, d := range ds {
		for _, a := range d.Attempts {
			codes = append(codes, a.Status)
		}
	}
	return codes
}

// TestTriggeredInteraction receives the event of an interaction created
// server-side from a template carrying the Dispatcher's
// InteractionWebhookConfig, as a scheduled trigger creates it: no wait
// knows its id, yet the handler accepts the delivery on the token alone
// (without reading the job), and a later Wait resolves from it.
func TestTriggeredInteraction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	t.Run("with a client", func(t *testing.T) {
		g := newFakeGemini(t, nil)
		d, _ := newReceiver(t, g.JWKSURL(), g.client)
		id, ds := triggerAndFinish(t, g, d.InteractionWebhookConfig())
		if len(ds) != 1 || ds[0].Err != nil {
			t.Fatalf("deliveries = %+v, want one accepted", ds)
		}
		if n := g.api.reads("interactions/" + id); n != 0 {
			t.Errorf("binding the delivery read the interaction %d times, want 0 (the token binds it)", n)
		}
		ev, err := d.Wait(ctx, id)
		if it, ok := ev.Job.(*interactions.Interaction); err != nil || !ok || it.Status != interactions.InteractionStatusCompleted || ev.Type != webhook.InteractionCompleted {
			t.Fatalf("Wait = %+v, %v", ev, err)
		}
		if n := g.api.reads("interactions/" + id); n != 1 {
			t.Errorf("%d reads of the interaction, want 1 (the confirmation)", n)
		}
	})

	t.Run("without a client", func(t *testing.T) {
		g := newFakeGemini(t, nil)
		d, _ := newReceiver(t, g.JWKSURL(), nil)
		id, ds := triggerAndFinish(t, g, d.InteractionWebhookConfig())
		if len(ds) != 1 || ds[0].Err != nil {
			t.Fatalf("deliveries = %+v, want one accepted", ds)
		}
		ev, err := d.Wait(ctx, id)
		if err != nil || ev.Type != webhook.InteractionCompleted || ev.Data.ID != id || ev.Polled {
			t.Fatalf("Wait = %+v, %v; want the delivered event", ev, err)
		}
	})

	t.Run("replicas sharing a Binder", func(t *testing.T) {
		g := newFakeGemini(t, nil)
		b, err := webhook.NewBinder([]byte("a secret the replicas share, 32+ bytes"))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := newReceiver(t, g.JWKSURL(), nil, dispatch.WithBinder(b))
		_, url := newReceiver(t, g.JWKSURL(), nil, dispatch.WithBinder(b))
		wc := a.InteractionWebhookConfig()
		wc.Uris = []string{url} // replica a's template, delivered to the other replica
		if _, ds := triggerAndFinish(t, g, wc); len(ds) != 1 || ds[0].Err != nil {
			t.Fatalf("deliveries to another replica = %+v, want one accepted", ds)
		}
	})
}

// TestForeignTriggerRefused sends this receiver the event of a triggered
// interaction whose template carries another Dispatcher's config (its
// binder, its token), as a replay would: refused with 403, unless the
// API says the interaction is this project's.
func TestForeignTriggerRefused(t *testing.T) {
	refusing := func(t *testing.T) func(*geminitest.Server) {
		return func(s *geminitest.Server) {
			s.Retry = []time.Duration{0} // a retry is refused too
			s.Logf = t.Logf              // the refusals are the point
		}
	}
	theirs, err := dispatch.New(nil, "https://theirs.example/gemini/webhook")
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	theirConfig := func(url string) *interactions.WebhookConfig {
		wc := theirs.InteractionWebhookConfig()
		wc.Uris = []string{url}
		return wc
	}
	forbidden := []int{http.StatusForbidden, http.StatusForbidden}

	t.Run("without a client", func(t *testing.T) {
		g := newFakeGemini(t, refusing(t))
		_, url := newReceiver(t, g.JWKSURL(), nil)
		if _, ds := triggerAndFinish(t, g, theirConfig(url)); !slices.Equal(attemptStatuses(ds), forbidden) {
			t.Errorf("foreign token: answers %v, want %v", attemptStatuses(ds), forbidden)
		}
	})

	t.Run("with a client, another project", func(t *testing.T) {
		ours := newFakeGemini(t, nil)
		_, url := newReceiver(t, ours.JWKSURL(), ours.client)
		g := newFakeGemini(t, func(s *geminitest.Server) {
			refusing(t)(s)
			s.Keys = ours.Keys // Google signs every project's deliveries with the same keys
		})
		id, ds := triggerAndFinish(t, g, theirConfig(url))
		if !slices.Equal(attemptStatuses(ds), forbidden) {
			t.Errorf("foreign token: answers %v, want %v", attemptStatuses(ds), forbidden)
		}
		if n := ours.api.reads("interactions/" + id); n != 1 {
			t.Errorf("%d reads of the foreign interaction, want 1 for both attempts", n)
		}
	})

	t.Run("with a client, this project", func(t *testing.T) {
		// The token is not ours, but the API reads the interaction as
		// this project's: the delivery is bound by that read.
		g := newFakeGemini(t, nil)
		_, url := newReceiver(t, g.JWKSURL(), g.client)
		id, ds := triggerAndFinish(t, g, theirConfig(url))
		if len(ds) != 1 || ds[0].Err != nil {
			t.Errorf("deliveries = %+v, want one accepted", ds)
		}
		if n := g.api.reads("interactions/" + id); n != 1 {
			t.Errorf("%d reads of the interaction, want 1", n)
		}
	})
}
