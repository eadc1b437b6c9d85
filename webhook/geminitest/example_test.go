package geminitest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"google.golang.org/genai"
	ia "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// An integration test of an app: the real genai client asks the fake
// Gemini for a video with a dynamic webhook pointing at the app's endpoint,
// bound to the app by a Binder's token in its user_metadata; the test
// finishes the generation, the app receives the verified, bound event and
// reads the operation back.
func ExampleServer() {
	srv := geminitest.NewServer()
	defer srv.Close()
	ctx := context.Background()

	// The app's endpoint verifies dynamic deliveries with the keys the
	// fake publishes, as it would with verify.GeminiJWKSURL in production.
	v, err := verify.New(verify.Config{JWKSURL: srv.JWKSURL()})
	if err != nil {
		log.Fatal(err)
	}
	// Those keys are shared by every Gemini customer, so the app accepts
	// only deliveries carrying its Binder's token. In production the
	// secret is 32 bytes from crypto/rand, kept like any other secret.
	binder, err := webhook.NewBinder([]byte("binder secret, 32 bytes or more!"))
	if err != nil {
		log.Fatal(err)
	}
	events := make(chan *webhook.Event, 1)
	app := httptest.NewServer(webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		events <- ev
		return nil
	}, webhook.WithBinding(binder.Check)))
	defer app.Close()

	client := srv.Client(ctx)
	op, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a cat"},
		&genai.GenerateVideosConfig{WebhookConfig: &genai.WebhookConfig{
			Uris:         []string{app.URL},
			UserMetadata: binder.Metadata("cat-video"),
		}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created, done:", op.Done)

	if err := srv.Finish(op.Name, geminitest.Succeed); err != nil {
		log.Fatal(err)
	}
	ev := <-events
	var md struct {
		Key string `json:"genaihook_key"`
	}
	if err := json.Unmarshal(ev.UserMetadata, &md); err != nil {
		log.Fatal(err)
	}
	fmt.Println("received:", ev.Type, "via", ev.Auth.Scheme, "for", md.Key)

	got, err := client.Operations.GetVideosOperation(ctx, &genai.GenerateVideosOperation{Name: ev.Data.ID}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("done:", got.Done, "videos:", len(got.Response.GeneratedVideos))
	// Output:
	// created, done: false
	// received: video.generated via v1a for cat-video
	// done: true videos: 1
}

// A static webhook, registered through the Webhooks API, receives the
// events of jobs that carry no webhook_config; here a background
// interaction that AutoFinish completes on its own.
func ExampleServer_staticWebhook() {
	srv := geminitest.NewUnstartedServer()
	srv.AutoFinish = 10 * time.Millisecond
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	client := srv.Client(ctx)

	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	res, err := client.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		URI:              app.URL + "/gemini/webhook",
		SubscribedEvents: []webhooks.WebhookSubscribedEvent{webhooks.WebhookSubscribedEventInteractionCompleted},
	}})
	if err != nil {
		log.Fatal(err)
	}
	// The secret is shown once, at creation: the app keeps it.
	v, err := verify.New(verify.Config{Secrets: []string{*res.Webhook.NewSigningSecret}})
	if err != nil {
		log.Fatal(err)
	}
	events := make(chan *webhook.Event, 1)
	mux.Handle("/gemini/webhook", webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		events <- ev
		return nil
	}))

	in := ia.NewInteractionsInput("Summarise the news")
	created, err := client.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(ia.CreateModelInteraction{
			Model: "gemini-2.5-flash", Input: &in, Background: genai.Ptr(true),
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created.Interaction.Status)

	ev := <-events
	fmt.Println("received:", ev.Type, "via", ev.Auth.Scheme, ev.Data.ID == *created.Interaction.ID)
	// Output:
	// created: in_progress
	// received: interaction.completed via v1 true
}

// A background video interaction, the way Gemini now generates video: the
// app asks an Omni model for a video, gets interaction.completed, and finds
// the video in the interaction's OutputVideo.
func ExampleServer_videoInteraction() {
	srv := geminitest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	client := srv.Client(ctx)

	in := ia.NewInteractionsInput("a cat on a skateboard")
	format := ia.NewCreateModelInteractionResponseFormat(ia.NewResponseFormat(ia.VideoResponseFormat{
		Delivery: ia.VideoResponseFormatDeliveryURI.ToPointer(),
	}))
	res, err := client.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(ia.CreateModelInteraction{
			Model: ia.ModelGeminiOmniFlashPreview, Input: &in, Background: genai.Ptr(true), ResponseFormat: &format,
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	id := *res.Interaction.ID
	fmt.Println("created:", res.Interaction.Status)

	if err := srv.Finish(id, geminitest.Succeed); err != nil {
		log.Fatal(err)
	}
	got, err := client.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id})
	if err != nil {
		log.Fatal(err)
	}
	video := got.Interaction.OutputVideo
	resp, err := http.Get(*video.URI)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("completed:", got.Interaction.Status, *video.MimeType, resp.Status)
	// Output:
	// created: in_progress
	// completed: completed video/mp4 200 OK
}
