package webhooktest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// A first handler test: NewSender makes a test secret and the Verifier
// that accepts it, and Serve delivers a signed event to the handler in
// process. In a test, t.Context() replaces context.Background() and a
// non-nil error fails it (t.Fatal): the Sender makes one attempt, so a
// failing handler fails the test at once.
func ExampleNewSender() {
	s, v := webhooktest.NewSender(verify.SchemeHMAC)
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		fmt.Println("handled", ev.Type, ev.Data.ID)
		return nil
	})
	_, err := s.Serve(context.Background(), h, webhooktest.NewPayload(webhook.BatchSucceeded, "batches/123"))
	fmt.Println(err)
	// Output:
	// handled batch.succeeded batches/123
	// <nil>
}

// A handler test for dynamic webhooks, signed with Google's global keys as
// live deliveries are (Ed25519 "v1a"): the handler accepts only deliveries
// bound to it by a Binder's token in the job's user_metadata, which Gemini
// echoes on every event of the job.
func ExampleNewSender_dynamic() {
	s, v := webhooktest.NewSender(verify.SchemeEd25519)
	binder, _ := webhook.NewBinder([]byte("binder secret, 32 bytes or more!")) // in production: 32 random bytes
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		fmt.Println("handled", ev.Type, ev.Data.ID, "via", ev.Auth.Scheme)
		return nil
	}, webhook.WithBinding(binder.Check), webhook.WithLogger(slog.New(slog.DiscardHandler)))

	p := webhooktest.NewPayload(webhook.InteractionCompleted, "v1_ChdOdXRoYXJH")
	p.UserMetadata = binder.Metadata("report-7") // as the job's webhook_config carried it
	d, _ := s.Serve(context.Background(), h, p)
	fmt.Println(d.Attempts[0].Status)

	// Another customer's job, validly signed by Google, replayed here.
	d, _ = s.Serve(context.Background(), h, webhooktest.NewPayload(webhook.InteractionCompleted, "v1_Q2hkT2RYUm"))
	fmt.Println(d.Attempts[0].Status)
	// Output:
	// handled interaction.completed v1_ChdOdXRoYXJH via v1a
	// 200
	// 403
}

// Test that a handler survives Gemini's at-least-once delivery: a duplicate
// of an event reaches the callback once, and a forged one not at all.
func ExampleFaults() {
	s, v := webhooktest.NewSender(verify.SchemeHMAC)
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		fmt.Println("handler saw", ev.Type)
		return nil
	}, webhook.WithLogger(slog.New(slog.DiscardHandler)))

	s.Retry = []time.Duration{0, 0} // two retries without waiting
	s.Faults = webhooktest.Faults{Duplicate: 1}
	d, _ := s.Serve(context.Background(), h, webhooktest.NewPayload(webhook.InteractionCompleted, "v1_abc"))
	for _, a := range d.Attempts {
		fmt.Printf("status %d duplicate=%v %s\n", a.Status, a.Duplicate, bytes.TrimSpace(a.Body))
	}

	s.Faults = webhooktest.Faults{TamperBody: true}
	d, err := s.Serve(context.Background(), h, webhooktest.NewPayload(webhook.InteractionCompleted, "v1_abc"))
	fmt.Println(len(d.Attempts), "attempts, last status", d.Attempts[len(d.Attempts)-1].Status)
	fmt.Println(err != nil)
	// Output:
	// handler saw interaction.completed
	// status 200 duplicate=false ok
	// status 200 duplicate=true duplicate
	// 3 attempts, last status 401
	// true
}

// Publish a Sender's keys as a JWKS on a local server, for a receiver
// whose Verifier must be configured by its own code, with a URL.
func ExampleKeys() {
	keys := webhooktest.NewKeys()
	jwks := httptest.NewServer(keys)
	defer jwks.Close()

	v, err := verify.New(verify.Config{JWKSURL: jwks.URL + "/.well-known/jwks.json"})
	if err != nil {
		panic(err)
	}
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		fmt.Println(ev.Auth.Scheme, ev.Type, ev.Data.FileName)
		return nil
	}, webhook.InsecureSkipBinding(), webhook.WithLogger(slog.New(slog.DiscardHandler)))

	s := &webhooktest.Sender{Keys: keys}
	p := webhooktest.NewPayload(webhook.VideoGenerated, "models/veo-3.0/operations/op1")
	p.Data["output_file_uri"] = "https://example.com/v.mp4"
	p.Data["file_name"] = "files/v1"
	if _, err := s.Serve(context.Background(), h, p); err != nil {
		panic(err)
	}
	// Output:
	// v1a video.generated files/v1
}
