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

// Unit-test a webhook handler: the Sender signs with the handler's secret
// and delivers in-process, as Gemini would over the network.
func ExampleSender_Serve() {
	const secret = "whsec_9R2wyjJke2knBl9fkzSrO0K5BB7igcdwfIDpXUdbh7g="
	v, err := verify.New(verify.Config{Secrets: []string{secret}})
	if err != nil {
		panic(err)
	}
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		fmt.Println("handler saw", ev.Type, ev.Data.ID)
		return nil
	})

	s := &webhooktest.Sender{Secrets: []string{secret}}
	d, err := s.Serve(context.Background(), h, webhooktest.BatchSucceeded("batches/abc123", "gs://bucket/results.jsonl"))
	if err != nil {
		panic(err)
	}
	fmt.Println("status", d.Attempts[0].Status)
	// Output:
	// handler saw batch.succeeded batches/abc123
	// status 200
}

// Test that a handler survives Gemini's at-least-once delivery: a duplicate
// of an event reaches the callback once, and a forged one not at all.
func ExampleFaults() {
	const secret = "whsec_9R2wyjJke2knBl9fkzSrO0K5BB7igcdwfIDpXUdbh7g="
	v, _ := verify.New(verify.Config{Secrets: []string{secret}})
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		fmt.Println("handler saw", ev.Type)
		return nil
	}, webhook.WithLogger(slog.New(slog.DiscardHandler)))

	s := &webhooktest.Sender{
		Secrets: []string{secret},
		Retry:   []time.Duration{0, 0}, // two quick retries instead of Gemini's 24 hours
		Faults:  webhooktest.Faults{Duplicate: 1},
	}
	d, _ := s.Serve(context.Background(), h, webhooktest.InteractionCompleted("v1_abc"))
	for _, a := range d.Attempts {
		fmt.Printf("status %d duplicate=%v %s\n", a.Status, a.Duplicate, bytes.TrimSpace(a.Body))
	}

	s.Faults = webhooktest.Faults{TamperBody: true}
	d, err := s.Serve(context.Background(), h, webhooktest.InteractionCompleted("v1_abc"))
	fmt.Println(len(d.Attempts), "attempts, last status", d.Attempts[len(d.Attempts)-1].Status)
	fmt.Println(err != nil)
	// Output:
	// handler saw interaction.completed
	// status 200 duplicate=false ok
	// status 200 duplicate=true duplicate
	// 3 attempts, last status 401
	// true
}

// Sign dynamic deliveries as live Gemini does (Ed25519 "v1a") with keys
// whose JWKS a local server publishes, and receive them with a handler that
// verifies against that JWKS and, since those keys are shared by every
// Gemini customer, accepts only deliveries bound to it by a Binder's token
// in the job's user_metadata.
func ExampleKeys() {
	keys := webhooktest.NewKeys()
	jwks := httptest.NewServer(keys)
	defer jwks.Close()

	v, err := verify.New(verify.Config{JWKSURL: jwks.URL + "/.well-known/jwks.json"})
	if err != nil {
		panic(err)
	}
	// The receiver's binding secret: in production 32 bytes from
	// crypto/rand, kept like any other secret.
	binder, err := webhook.NewBinder([]byte("binder secret, 32 bytes or more!"))
	if err != nil {
		panic(err)
	}
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		fmt.Println(ev.Auth.Scheme, ev.Type, ev.Data.FileName, ev.UserMetadata["job"])
		return nil
	}, webhook.WithBinding(binder.Check))

	s := &webhooktest.Sender{Keys: keys}
	p := webhooktest.VideoGenerated("models/veo-3.0/operations/op1", "https://example.com/v.mp4", "files/v1")
	p.UserMetadata = binder.Metadata("video-1") // as set in the job's webhook_config
	p.UserMetadata["job"] = "42"
	if _, err := s.Serve(context.Background(), h, p); err != nil {
		panic(err)
	}
	// Output:
	// v1a video.generated files/v1 42
}
